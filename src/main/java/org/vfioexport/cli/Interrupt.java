package org.vfioexport.cli;

import sun.misc.Signal;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** SIGINT and SIGTERM caught from the moment it is made, so one arriving early is not lost. */
final class Interrupt {
    private final CountDownLatch fired = new CountDownLatch(1);

    Interrupt() {
        Signal.handle(new Signal("INT"), s -> fired.countDown());
        Signal.handle(new Signal("TERM"), s -> fired.countDown());
    }

    boolean fired() {
        return fired.getCount() == 0;
    }

    void await() throws InterruptedException {
        fired.await();
    }

    boolean await(long ms) throws InterruptedException {
        return fired.await(ms, TimeUnit.MILLISECONDS);
    }
}
