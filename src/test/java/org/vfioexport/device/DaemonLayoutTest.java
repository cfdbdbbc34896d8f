package org.vfioexport.device;

import io.vertx.core.internal.ContextInternal;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vfioexport.api.Session;
import org.vfioexport.client.vertx.ExportedBuffer;
import org.vfioexport.client.vertx.VfioExportClient;
import org.vfioexport.testutil.TestDaemon;
import org.vfioexport.testutil.Wait;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.vfioexport.testutil.Conf.GPU;
import static org.vfioexport.testutil.Conf.NVME;

/**
 * The daemon's event-loop layout: every device lives on the loop that serves the connections, so an export goes
 * from the request line to the kernel and back to the response without crossing a thread.
 */
class DaemonLayoutTest {
    @TempDir
    Path dir;

    @Test
    void devicesLiveOnTheLoopOfTheConnections() throws Exception {
        try (TestDaemon daemon = TestDaemon.start(dir); VfioExportClient a = daemon.connect();
             VfioExportClient b = daemon.connect()) {
            ExportedBuffer x = a.export(NVME, 2, 0, 4096);
            x.fd().close();
            Wait.untilEquals("both connections' sessions", 20_000, 2, () -> daemon.daemon().service().sessions().size());
            List<Session> sessions = List.copyOf(daemon.daemon().service().sessions());
            for (String id : List.of(NVME, GPU)) {
                MessageOrderDevice d = (MessageOrderDevice) daemon.daemon().service().devices().get(id);
                for (Session s : sessions) {
                    assertSame(((ContextInternal) s.context()).nettyEventLoop(), d.context().nettyEventLoop(),
                            id + " and connection " + s.id() + " must share their event loop");
                }
            }
            assertEquals(1, daemon.daemon().service().devices().liveExports());
        }
    }
}
