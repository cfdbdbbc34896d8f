package org.vfioexport.api;

import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.spi.transport.Transport;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The guarded transport is the epoll transport in every respect but the listener's first handler. */
class GuardedTransportTest {
    /** A method Vert.x adds to the SPI must be forwarded too, not left to an interface default that epoll overrides. */
    @Test
    void everyMethodOfTheSpiIsForwarded() {
        List<String> missing = new ArrayList<>();
        for (Method m : Transport.class.getMethods()) {
            if (Modifier.isStatic(m.getModifiers())) continue;
            try {
                GuardedTransport.Spi.class.getDeclaredMethod(m.getName(), m.getParameterTypes());
            } catch (NoSuchMethodException e) {
                missing.add(m.toString());
            }
        }
        assertEquals(List.of(), missing);
    }

    @Test
    void vertxBuiltWithItRunsOnEpollAndGuardsItsListeners() {
        Vertx vertx = Vertx.builder().withTransport(GuardedTransport.epoll()).build();
        try {
            assertTrue(vertx.isNativeTransportEnabled(), String.valueOf(vertx.unavailableNativeTransportCause()));
            assertEquals("epoll", GuardedTransport.epoll().name());
            assertTrue(GuardedTransport.guards(((VertxInternal) vertx).transport()));
        } finally {
            vertx.close().await();
        }
        Vertx plain = Vertx.vertx();
        try {
            assertFalse(GuardedTransport.guards(((VertxInternal) plain).transport()));
        } finally {
            plain.close().await();
        }
    }
}
