"""When the bus or the bridge is down, the board's offline policy decides."""

from secc.authorization import (
    AuthorizationDecision,
    AuthorizationRequest,
    AuthorizationStatus,
    OfflineFallbackAuthorizer,
)

REQ = AuthorizationRequest(evse_id="1", session_id="ab", id_token="0A0B0C0D0E0F",
                           id_token_type="MacAddress")


class Fixed:
    def __init__(self, status):
        self.status = status

    async def authorize(self, request):
        return AuthorizationDecision(self.status, "from primary")


async def test_unreachable_bridge_uses_the_offline_policy():
    accept = OfflineFallbackAuthorizer(Fixed(AuthorizationStatus.TIMEOUT), True)
    reject = OfflineFallbackAuthorizer(Fixed(AuthorizationStatus.TIMEOUT), False)
    assert (await accept.authorize(REQ)).accepted
    decision = await reject.authorize(REQ)
    assert not decision.accepted and "offline policy reject" in decision.reason


async def test_a_real_answer_is_never_overridden():
    for status in (AuthorizationStatus.INVALID, AuthorizationStatus.ACCEPTED,
                   AuthorizationStatus.BLOCKED):
        decision = await OfflineFallbackAuthorizer(Fixed(status), True).authorize(REQ)
        assert decision.status is status


async def test_daemon_wires_the_policy_from_the_board_config(tmp_path):
    from secc.config import loads_board_config
    from secc.daemon import bus_from_config
    text = ('[board]\nname = "t"\nkind = "sim"\nevse_id = "DE*PYS*E1*1"\n[bus]\nenabled = true\n'
            f'state_dir = "{tmp_path}"\noffline_authorization = "accept"\n')
    bus, authorizer = bus_from_config(loads_board_config(text))
    assert isinstance(authorizer, OfflineFallbackAuthorizer)
    assert authorizer.accept_when_unreachable is True
    bus.outbox.close()
