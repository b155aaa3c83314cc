"""CP interlock after PowerDelivery(Stop) (catalogue item 23; ISO 15118-4 style
TC_SECC_DC_VTB_WeldingDetection_005 and TC_SECC_DC_VTB_SessionStop_006, DIN and ISO-2 DC).

The tester charges, sends PowerDeliveryReq(Stop) and, unlike a real car, keeps its pilot in C
(S2 closed), then sends WeldingDetectionReq or SessionStopReq(Terminate). The SECC holds its
answer for the CP state detection time (1.5 s after PowerDeliveryRes(Stop)), then answers
FAILED and closes (≤ 5 s), with the energy transfer off. The car's response timeout for these
requests (2 s) covers the hold."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conformance.runner import Target, drive_to

CP_STATE_DETECTION_S = 1.5   # V2G_SECC_CPState_Detection_Timeout


def request_with_cp_c(request: str) -> Any:
    async def run(target: Target, p: Any, case: Any) -> None:
        ev = await drive_to(target, p, "ChargeLoop")
        try:
            status = await target.pilot.status()
            assert status["cp"] == "C", f"the car's pilot is not C while charging: {status}"
            _, res = await ev.request("PowerDeliveryReq", start=False, timeout=5.0)
            assert res.response_code == "OK", res
            stopped_at = asyncio.get_running_loop().time()
            # the tester keeps S2 closed: no pilot change to B
            _, res = await ev.request(request, timeout=2.0)
            answered_after = asyncio.get_running_loop().time() - stopped_at
            assert str(res.response_code).startswith("FAILED"), res
            # held for the detection time, not refused at once (a real car's S2 may lag)
            assert answered_after >= CP_STATE_DETECTION_S - 0.1, answered_after
            await ev.conn.expect_close(5.0)
            await target.pilot.wait_for(lambda s: not s["contactors_closed"]
                                        and s["pwm"] != "pwm" and s["output_current_a"] < 1.0,
                                        within=3.0)
        finally:
            ev.conn.close()
    return run


welding_detection_with_cp_c = request_with_cp_c("WeldingDetectionReq")
session_stop_with_cp_c = request_with_cp_c("SessionStopReq")
