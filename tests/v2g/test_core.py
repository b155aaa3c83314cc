"""The session core with a toy protocol: table lookups, sequence errors, timers, failures."""

from dataclasses import dataclass

from secc.v2g.core import TERMINATED, Outcome, SessionCore
from secc.v2g.evse import CloseConnection, EnterSafeState
from secc.v2g.failures import RESPONSE_CODES, Failure, SessionFailure
from secc.v2g.timers import Timers, V2GTimerConfig


@dataclass
class Res:
    response_code: str
    processing: str = "Finished"


class Toy(SessionCore):
    PROTOCOL = "din"
    INITIAL_STATE = "WaitSessionSetup"
    TRANSITIONS = {
        "WaitSessionSetup": {"SessionSetupReq": "WaitAuth"},
        "WaitAuth": {"AuthReq": "WaitStop"},
        "WaitStop": {"SessionStopReq": TERMINATED},
    }

    def __init__(self, **kw):
        super().__init__(**kw)
        self.auth_rounds = 0

    def failed_response(self, request_name, code):
        return request_name[:-3] + "Res", Res(code)

    def on_SessionSetupReq(self, body, now):
        self.session_id = self.new_session_id()
        return Outcome(Res("OK_NewSessionEstablished"))

    def on_AuthReq(self, body, now):
        if body == "bad":
            raise SessionFailure(Failure.CERT_CHAIN_ERROR, "test")
        self.auth_rounds += 1
        if self.auth_rounds < 3:
            return Outcome(Res("OK", "Ongoing"), stay=True)
        return Outcome(Res("OK"))

    def on_SessionStopReq(self, body, now):
        return Outcome(Res("OK"))


def test_happy_path_follows_the_table_and_ongoing_stays():
    core = Toy()
    assert core.receive("SessionSetupReq", None, 0.0).response.response_code.startswith("OK")
    sid = core.session_id
    assert sid != bytes(8) and len(sid) == 8
    for _ in range(2):
        reply = core.receive("AuthReq", None, 1.0, session_id=sid)
        assert reply.response.processing == "Ongoing" and core.state == "WaitAuth"
    core.receive("AuthReq", None, 2.0, session_id=sid)
    assert core.state == "WaitStop"
    reply = core.receive("SessionStopReq", None, 3.0, session_id=sid)
    assert core.terminated and reply.close and core.next_deadline() is None


def test_out_of_sequence_request_gets_sequence_error_and_safe_state():
    core = Toy()
    reply = core.receive("SessionStopReq", None, 0.0)
    assert reply.response.response_code == "FAILED_SequenceError"
    assert reply.response_name == "SessionStopRes"
    assert any(isinstance(a, EnterSafeState) for a in reply.actions)
    assert any(isinstance(a, CloseConnection) for a in reply.actions)
    assert reply.close and core.state == TERMINATED


def test_wrong_session_id_is_unknown_session():
    core = Toy()
    core.receive("SessionSetupReq", None, 0.0)
    reply = core.receive("AuthReq", None, 1.0, session_id=b"\x01" * 8)
    assert reply.response.response_code == "FAILED_UnknownSession" and core.terminated


def test_handler_failure_maps_through_the_one_table():
    core = Toy()
    core.receive("SessionSetupReq", None, 0.0)
    reply = core.receive("AuthReq", "bad", 1.0, session_id=core.session_id)
    assert reply.response.response_code == RESPONSE_CODES["din"][Failure.CERT_CHAIN_ERROR]


def test_sequence_timeout_ends_session():
    core = Toy(timers=V2GTimerConfig(sequence_timeout=60.0))
    core.receive("SessionSetupReq", None, 10.0)
    assert core.next_deadline() == 70.0
    assert core.handle_timer(69.9) is None
    reply = core.handle_timer(70.0)
    assert reply is not None and reply.close and core.terminated
    assert any(isinstance(a, EnterSafeState) for a in reply.actions)


def test_communication_setup_timeout_without_any_request():
    core = Toy(now=5.0)
    assert core.next_deadline() == 25.0
    assert core.handle_timer(25.0).close


def test_requests_after_termination_are_refused():
    core = Toy()
    core.receive("SessionStopReq", None, 0.0)
    assert core.receive("SessionSetupReq", None, 1.0).close


def test_every_failure_has_a_code_in_every_protocol():
    for protocol, table in RESPONSE_CODES.items():
        missing = [f for f in Failure if f not in table]
        assert not missing, (protocol, missing)


def test_timers_fire_once_in_deadline_order():
    t = Timers()
    t.arm("a", 0, 5)
    t.arm("b", 0, 2)
    t.arm_once("b", 1, 10)  # does not extend
    assert t.next_deadline() == 2
    assert t.expired(10) == ["b", "a"]
    assert t.expired(10) == []
