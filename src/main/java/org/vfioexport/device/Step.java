package org.vfioexport.device;

import java.util.concurrent.Callable;
import java.util.function.BiFunction;
import java.util.function.Supplier;

/**
 * What a {@link DeviceCore} operation asks its scheduler to do next: finish with a value or a failure, or make one
 * kernel call and hand its outcome back to the core. The core never makes a kernel call itself and never waits; the
 * scheduler decides on which thread the call runs (an event loop when it cannot sleep, a worker when it can) and
 * under which exclusion the next step runs.
 *
 * @param <T> the operation's result
 */
sealed interface Step<T> {
    /** The operation is over. */
    record Done<T>(T value) implements Step<T> {}

    /** The operation failed; its effects are already undone or announced by the core. */
    record Failed<T>(Throwable cause) implements Step<T> {}

    /**
     * Make {@code kernel}, then give its outcome to {@code then} (under the operation's exclusion again).
     *
     * @param maySleep whether the call can sleep (the device's own answer): such a call must not run on an event
     *                 loop
     */
    record Call<T, V>(Callable<V> kernel, boolean maySleep, BiFunction<V, Throwable, Step<T>> then) implements Step<T> {
        /**
         * Makes the kernel call on this thread, outside the core, and returns what resumes the core with its outcome
         * (to be run under the operation's exclusion, on the operation's thread of steps). Never throws: a failure
         * of the call is part of the outcome.
         */
        Supplier<Step<T>> invoke() {
            V v;
            try {
                v = kernel.call();
            } catch (Throwable t) {
                return () -> then.apply(null, t);
            }
            return () -> then.apply(v, null);
        }
    }

    /**
     * Wait, without a thread, for the revocation handshake: resume with {@code then} (under the operation's
     * exclusion, the operation keeping its admission) once the core says every answer is in
     * ({@link DeviceCore#handshakeSettled()}) or {@code millis} have passed, whichever comes first.
     */
    record Await<T>(long millis, Supplier<Step<T>> then) implements Step<T> {}

    static <T> Step<T> done(T value) {
        return new Done<>(value);
    }

    static <T> Step<T> failed(Throwable cause) {
        return new Failed<>(cause);
    }

    static <T, V> Step<T> call(Callable<V> kernel, boolean maySleep, BiFunction<V, Throwable, Step<T>> then) {
        return new Call<>(kernel, maySleep, then);
    }
}
