"""Subscriptions against a real daemon: the events of exports, resets and memory toggles, gaps, the end."""
import itertools
from typing import List

from vfio_export import INVALID_PARAMS, NO_SUCH_DEVICE, NO_SUCH_EXPORT, Client, Event, RpcError, Subscription

from .daemon import GPU, NVME, Daemon
from .support import NoLeaksTestCase, fd_size

KiB = 1024
WAIT = 30.0  # the bound on every wait for an event that must come
RETENTION = 2  # events kept per device for `since`: small, so that a replay reports a gap


class EventsTest(NoLeaksTestCase):
    daemon: Daemon

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon.start(lambda conf: conf.update(event_retention=RETENTION))

    @classmethod
    def tearDownClass(cls) -> None:
        code = cls.daemon.stop()
        if code != 0:
            raise AssertionError("the daemon exited %s on SIGTERM; stderr: %s" % (code, cls.daemon.stderr()))

    def connect(self) -> Client:
        c = Client.connect(self.daemon.socket, timeout=WAIT)
        self.addCleanup(c.close)
        return c

    def next_events(self, sub: Subscription, n: int) -> List[Event]:
        return list(itertools.islice(sub.events(timeout=WAIT), n))

    def test_a_subscriber_sees_an_export_created_and_released(self) -> None:
        c = self.connect()
        sub = c.subscribe([NVME])
        self.assertEqual({NVME}, set(sub.heads))
        with c.export(NVME, 2, 0, 4 * KiB) as e:
            c.release(e)
        created, released = self.next_events(sub, 2)
        self.assertEqual(("export.created", e.export_id, "live", e.created_seq),
                         (created.type, created.export_id, created.state, created.seq))
        self.assertEqual(sub.heads[NVME] + 1, created.seq)
        self.assertEqual(("export.released", e.export_id, "client", e.created_seq + 1),
                         (released.type, released.export_id, released.cause, released.seq))
        self.assertEqual(released.seq, sub.positions[NVME])
        self.assertIsNone(sub.next(timeout=0), "nothing else happened on the device")

    def test_a_reset_revokes_then_restores_and_its_events_come_before_its_answer(self) -> None:
        c = self.connect()
        with c.export(NVME, 2, 0, 8 * KiB) as e:
            sub = c.subscribe([NVME])
            result = c.reset(NVME)
            self.assertEqual((NVME, 1, 1), (result.device, result.revoked, result.restored))
            # guarantee 4: every event of the reset was on the connection before the response, so none is waited
            got = [sub.next(timeout=0) for _ in range(4)]
            self.assertEqual([("device.state", None, "resetting"), ("export.revoked", e.export_id, None),
                              ("export.restored", e.export_id, None), ("device.state", None, "ready")],
                             [(x.type, x.export_id, x.state) for x in got if x is not None])
            self.assertEqual({"reset"}, {x.cause for x in got if x is not None})
            self.assertEqual(list(range(sub.heads[NVME] + 1, sub.heads[NVME] + 5)), [x.seq for x in got if x])
            self.assertEqual(8 * KiB, fd_size(e), "the fd stays valid through the reset")
            c.release(e)
        self.assertEqual("export.released", self.next_events(sub, 1)[0].type)

    def test_a_watcher_is_told_before_the_revoke_and_its_answer_lets_the_reset_go_on(self) -> None:
        owner, operator = self.connect(), self.connect()
        with owner.export(NVME, 2, 0, 4 * KiB) as e:
            owner.watch(e)
            request = operator.send("device.reset", {"device": NVME, "quiesce_ms": 20000})
            notice = owner.next_revoking(timeout=10)
            self.assertIsNotNone(notice, "no export.revoking within 10 s")
            self.assertEqual((NVME, e.export_id, 20000), (notice["device"], notice["export_id"], notice["deadline_ms"]))
            owner.quiesced(e)
            result = operator.wait(request).value()
            self.assertEqual((1, 1, 0), (result["revoked"], result["acked"], result["timed_out"]))
            owner.release(e)

    def test_memory_off_revokes_and_an_export_made_meanwhile_starts_revoked(self) -> None:
        c = self.connect()
        sub = c.subscribe([GPU])
        with c.export(GPU, 2, 0, 4 * KiB) as live:
            self.assertEqual("export.created", self.next_events(sub, 1)[0].type)
            off = c.set_memory(GPU, False)
            self.assertEqual((False, 1, 0), (off.memory_enabled, off.revoked, off.restored))
            self.assertEqual([("device.state", "memory-disabled", None), ("export.revoked", None, live.export_id)],
                             [(x.type, x.state, x.export_id) for x in self.next_events(sub, 2)])
            with c.export(GPU, 2, 0, 4 * KiB) as dark:
                self.assertEqual("revoked", dark.state)
                created = self.next_events(sub, 1)[0]
                self.assertEqual(("export.created", dark.export_id, "revoked"),
                                 (created.type, created.export_id, created.state))
                on = c.set_memory(GPU, True)
                self.assertEqual((True, 0, 2), (on.memory_enabled, on.revoked, on.restored))
                events = self.next_events(sub, 3)
                self.assertEqual({("export.restored", live.export_id), ("export.restored", dark.export_id)},
                                 {(x.type, x.export_id) for x in events[:2]})
                self.assertEqual(("device.state", "ready"), (events[2].type, events[2].state))
                c.release(dark)
            c.release(live)
        self.assertEqual(["export.released", "export.released"], [x.type for x in self.next_events(sub, 2)])

    def test_the_exports_of_a_closed_connection_are_released_with_cause_session_end(self) -> None:
        watcher = self.connect()
        sub = watcher.subscribe([NVME])
        with Client.connect(self.daemon.socket, timeout=WAIT) as owner:
            e = owner.export(NVME, 2, 0, 4 * KiB)
            e.close()
        created, released = self.next_events(sub, 2)
        self.assertEqual((e.export_id, e.export_id), (created.export_id, released.export_id))
        self.assertEqual(("export.released", "session-end"), (released.type, released.cause))

    def test_a_replay_past_the_retention_reports_the_gap_and_positions_resume_after_it(self) -> None:
        c = self.connect()
        start = c.device(NVME).seq
        for _ in range(3):  # six events, more than the daemon retains
            with c.export(NVME, 2, 0, 4 * KiB) as e:
                c.release(e)
        head = start + 6
        replayer = self.connect()
        sub = replayer.subscribe([NVME], since={NVME: start})
        self.assertEqual(head, sub.heads[NVME])
        events = self.next_events(sub, 1 + RETENTION)
        lost = events[0]
        self.assertEqual(("events.lost", NVME, start + 1, head - RETENTION),
                         (lost.type, lost.device, lost.from_seq, lost.to_seq))
        self.assertTrue(lost.lost)
        self.assertEqual(list(range(head - RETENTION + 1, head + 1)), [x.seq for x in events[1:]])
        self.assertEqual(6 - RETENTION, sub.lost)
        self.assertEqual({NVME: head}, sub.positions)

        # a new connection picks up where this one stopped: no replay, the next event is the next seq
        resumed = self.connect().subscribe([NVME], since=sub.positions)
        self.assertIsNone(resumed.next(timeout=0))
        with c.export(NVME, 2, 0, 4 * KiB) as e:
            c.release(e)
        self.assertEqual([head + 1, head + 2], [x.seq for x in self.next_events(resumed, 2)])

    def test_subscribing_to_an_unknown_device_is_refused(self) -> None:
        c = self.connect()
        with self.assertRaises(RpcError) as err:
            c.subscribe(["0000:09:00.0"])
        self.assertEqual((NO_SUCH_DEVICE, {"device": "0000:09:00.0"}), (err.exception.code, err.exception.data))
        sub = c.subscribe()
        self.assertEqual({NVME, GPU}, sub.devices)
        sub.close()
        c.reset(NVME)
        self.assertIsNone(sub.next(timeout=0), "no event after unsubscribing")

    def test_an_own_scope_sees_its_exports_and_the_device_states_only(self) -> None:
        mine, other = self.connect(), self.connect()
        sub = mine.subscribe([NVME], scope="own")
        with mine.export(NVME, 2, 0, 4 * KiB) as a, other.export(NVME, 2, 0, 4 * KiB) as b:
            mine.reset(NVME)
            got = [sub.next(timeout=0) for _ in range(5)]   # all before the reset's answer (guarantee 4)
            self.assertEqual([("export.created", a.export_id), ("device.state", None), ("export.revoked", a.export_id),
                              ("export.restored", a.export_id), ("device.state", None)],
                             [(x.type, x.export_id) if x else None for x in got])
            seqs = [x.seq for x in got if x]
            self.assertEqual(sorted(seqs), seqs)
            self.assertTrue(seqs[-1] - seqs[0] > 4, "the other connection's events are skipped: %s" % seqs)
            self.assertNotIn(b.export_id, [x.export_id for x in got if x])
            other.release(b)
            mine.release(a)

    def test_a_list_scope_sees_the_listed_exports_and_refuses_unknown_ones(self) -> None:
        c, owner = self.connect(), self.connect()
        with owner.export(NVME, 2, 0, 4 * KiB) as a, owner.export(NVME, 2, 0, 4 * KiB) as b:
            with self.assertRaises(RpcError) as err:
                c.subscribe([NVME], export_ids=[a.export_id, "0000:01:00.0/999999"])
            self.assertEqual((NO_SUCH_EXPORT, "0000:01:00.0/999999"), (err.exception.code, err.exception.data["export_id"]))
            with self.assertRaises(RpcError) as err:
                c.subscribe([NVME], scope="mine")
            self.assertEqual((INVALID_PARAMS, "scope"), (err.exception.code, err.exception.data["field"]))
            sub = c.subscribe([NVME], export_ids=[a.export_id])
            owner.release(b)
            owner.release(a)
            released = sub.next(timeout=WAIT)
            self.assertEqual(("export.released", a.export_id), (released.type, released.export_id) if released else None)
            self.assertIsNone(sub.next(timeout=0), "b is not listed")


class EndOfStreamTest(NoLeaksTestCase):
    def test_iteration_ends_after_the_shutdown_events_when_the_daemon_stops(self) -> None:
        daemon = Daemon.start()
        try:
            c = Client.connect(daemon.socket, timeout=WAIT)
            self.addCleanup(c.close)
            sub = c.subscribe([NVME])
            e = c.export(NVME, 2, 0, 4 * KiB)
            e.close()
            first = sub.next(timeout=WAIT)
            self.assertEqual("export.created", first.type if first else None)
        finally:
            code = daemon.stop()
        self.assertEqual(0, code, daemon.stderr())
        rest = [(x.type, x.export_id, x.cause, x.state) for x in sub.events(timeout=WAIT)]  # ends: server closed
        # the device's last event is its close; the export was released (cause shutdown) before it
        self.assertEqual(("device.state", None, "shutdown", "closed"), rest[-1], rest)
        self.assertIn(("export.released", e.export_id, "shutdown", None), rest[:-1])
