package org.vfioexport.api;

import io.vertx.core.Future;
import io.vertx.core.Promise;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * What each user (uid) holds in the daemon, summed over all of its connections: the per-uid limits of the
 * {@link Policy} are checked against these counts. A user's connections live on different event loops, so the
 * counts are atomics; each is raised by the connection that takes a resource and lowered when it is given back.
 *
 * <p>One account per uid that ever connected, kept for the daemon's lifetime: their number is bounded by the
 * uids that exist on the host (a user namespace shows its unmapped ids as the overflow uid).
 */
public final class UserAccounts {
    private final Map<Integer, Account> accounts = new ConcurrentHashMap<>();

    public Account of(int uid) {
        return accounts.computeIfAbsent(uid, Account::new);
    }

    /** One user's share. */
    public static final class Account {
        private final int uid;
        private final AtomicInteger connections = new AtomicInteger();
        private final AtomicInteger exports = new AtomicInteger();
        private final AtomicInteger subscriptions = new AtomicInteger();
        private final AtomicInteger importers = new AtomicInteger();
        private final AtomicInteger fdsInFlight = new AtomicInteger();
        private final Set<Session> sessions = ConcurrentHashMap.newKeySet();

        Account(int uid) {
            this.uid = uid;
        }

        public int uid() {
            return uid;
        }

        /** Takes one of {@code max} connection slots; false when all are taken. */
        boolean tryOpenConnection(int max) {
            return tryTake(connections, max);
        }

        void closeConnection() {
            connections.decrementAndGet();
        }

        /** Takes one of {@code max} export slots (held from the request until the export's final release). */
        boolean tryTakeExport(int max) {
            return tryTake(exports, max);
        }

        void giveBackExport() {
            exports.decrementAndGet();
        }

        boolean tryTakeSubscription(int max) {
            return tryTake(subscriptions, max);
        }

        void giveBackSubscription() {
            subscriptions.decrementAndGet();
        }

        /** Takes one of {@code max} importer slots (held from the attach until the detach or the connection's end). */
        boolean tryTakeImporter(int max) {
            return tryTake(importers, max);
        }

        void giveBackImporter() {
            importers.decrementAndGet();
        }

        public int importers() {
            return importers.get();
        }

        /** Fds of this user's exports that the daemon duplicated for sending and the client has not yet received. */
        int fdsInFlight() {
            return fdsInFlight.get();
        }

        void fdsInFlight(int delta) {
            if (delta != 0) fdsInFlight.addAndGet(delta);
        }

        public int connections() {
            return connections.get();
        }

        public int exports() {
            return exports.get();
        }

        public int subscriptions() {
            return subscriptions.get();
        }

        void add(Session s) {
            sessions.add(s);
        }

        void remove(Session s) {
            sessions.remove(s);
        }

        /**
         * Asks every connection of this user to recount the fds it has in flight (each on its own loop, where its
         * writer lives); completes once all have.
         */
        Future<Void> recountFdsInFlight() {
            List<Future<Void>> all = new ArrayList<>();
            for (Session s : sessions) {
                Promise<Void> p = Promise.promise();
                s.context().runOnContext(v -> {
                    s.writer().recountFdsInFlight();
                    p.complete();
                });
                all.add(p.future());
            }
            return Future.join(all).mapEmpty();
        }

        private static boolean tryTake(AtomicInteger count, int max) {
            int n;
            do {
                n = count.get();
                if (n >= max) return false;
            } while (!count.compareAndSet(n, n + 1));
            return true;
        }
    }
}
