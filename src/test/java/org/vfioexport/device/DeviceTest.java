package org.vfioexport.device;

import io.vertx.core.Context;
import io.vertx.core.Future;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.vfioexport.kernel.DmaRange;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vfioexport.device.DeviceFixture.await;
import static org.vfioexport.testutil.Conf.NVME;

/** The device suite over both schedulers of the device core. */
class DeviceTest {
    @Nested
    @DisplayName("message order")
    class MessageOrder extends DeviceSuite {
        @Override
        Discipline discipline() {
            return Discipline.MESSAGE_ORDER;
        }

        @Test
        @DisplayName("an export made on the device's own loop is done when the call returns: no hand-off at all")
        void anExportOnTheDevicesLoopCrossesNoThread() throws Exception {
            MessageOrderDevice d = (MessageOrderDevice) fx.device(NVME);
            // another context on the device's loop, as a connection sharing the loop has
            Context connection = vertxInstance().getOrCreateContext();
            CompletableFuture<Future<Export>> made = new CompletableFuture<>();
            connection.runOnContext(v -> {
                if (!d.context().inThread()) made.completeExceptionally(new AssertionError("the fixture places devices on the caller's loop"));
                else made.complete(d.export(new ExportRequest("t", 2, List.of(new DmaRange(0, 4096)), 0)));
            });
            Future<Export> f = made.get(DeviceFixture.WAIT_MS, TimeUnit.MILLISECONDS);
            assertTrue(f.isComplete(), "the export went through the device and the kernel within the caller's task");
            assertEquals(ExportState.LIVE, await(f).state());
        }
    }

    @Nested
    @DisplayName("read-write lock")
    class RwLock extends DeviceSuite {
        @Override
        Discipline discipline() {
            return Discipline.RW_LOCK;
        }
    }
}
