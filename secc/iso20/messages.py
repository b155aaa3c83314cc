"""Building -20 message objects: rational numbers, EVSEStatus, and a schema-valid response for
every request we may have to refuse.

-20 responses carry their own ``Header`` (SessionID + TimeStamp). The core leaves it ``None``;
``Iso20Adapter.encode`` fills it, so the core never reads a wall clock.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from exi_schemas.generated import iso20 as cm
from exi_schemas.generated import iso20_ac as ac
from exi_schemas.generated import iso20_dc as dc
from secc.v2g import failed
from secc.v2g.evse import EvseLimits
from secc.v2g.physical import split

#: Which generated module owns each -20 message element (requests and responses).
MODULE_OF_SCHEMA: dict[str, ModuleType] = {"iso20": cm, "iso20-dc": dc, "iso20-ac": ac}


def module_of_message(name: str) -> ModuleType:
    if name.startswith("DC_"):
        return dc
    if name.startswith("AC_"):
        return ac
    return cm


def rational(x: float, module: ModuleType = cm) -> Any:
    """RationalNumberType (value × 10^exponent, value a 16-bit short) of ``module``."""
    value, exponent = split(x)
    return module.RationalNumberType(exponent=exponent, value=value)


def to_float(rn: Any | None, default: float | None = None) -> float | None:
    if rn is None:
        return default
    return rn.value * 10.0 ** rn.exponent


def evse_status(module: ModuleType, notification: str, max_delay: int) -> Any:
    """EVSEStatus: what the EVSE wants (Terminate, Pause, ScheduleRenegotiation, ...) and how
    many seconds the car has to react."""
    return module.EVSEStatusType(notification_max_delay=max_delay,
                                 evse_notification=notification)


def _dc_cpd_res(limits: EvseLimits) -> Any:
    return dc.DC_CPDResEnergyTransferModeType(
        evse_maximum_charge_power=rational(limits.max_power, dc),
        evse_minimum_charge_power=rational(max(limits.min_current, 1.0) * limits.min_voltage, dc),
        evse_maximum_charge_current=rational(limits.max_current, dc),
        # some cars reject 0 A minimum (field notes)
        evse_minimum_charge_current=rational(max(limits.min_current, 1.0), dc),
        evse_maximum_voltage=rational(limits.max_voltage, dc),
        evse_minimum_voltage=rational(limits.min_voltage, dc))


def ac_max_power(limits: EvseLimits) -> float:
    return limits.ac_phases * limits.ac_nominal_voltage * limits.ac_max_current


def _ac_cpd_res(limits: EvseLimits) -> Any:
    return ac.AC_CPDResEnergyTransferModeType(
        evse_maximum_charge_power=rational(ac_max_power(limits), ac),
        evse_minimum_charge_power=rational(limits.ac_phases * limits.ac_nominal_voltage * 6.0,
                                           ac),
        evse_nominal_frequency=rational(50, ac))


def failed_response(request_name: str, code: str, *, evse_id: str, limits: EvseLimits,
                    present_voltage: float = 0.0) -> tuple[str, Any]:
    """A schema-valid response to ``request_name`` carrying ``code`` (every required field
    filled with a neutral value; EVSEStatus says Terminate where the message has one)."""
    name = request_name[:-3] + "Res"
    terminate = {"evse_status": evse_status(module_of_message(name), "Terminate", 0)}
    header = None
    builders: dict[str, Any] = {
        "SessionSetupRes": lambda: cm.SessionSetupResType(header=header, response_code=code,
                                                          evseid=evse_id),
        "AuthorizationSetupRes": lambda: cm.AuthorizationSetupResType(
            header=header, response_code=code, authorization_services=["EIM"],
            certificate_installation_service=False,
            eim_as_res_authorization_mode=cm.EIM_ASResAuthorizationModeType()),
        "AuthorizationRes": lambda: cm.AuthorizationResType(header=header, response_code=code,
                                                            evse_processing="Finished"),
        # no contract to give: the schema still wants every element (neutral, unsigned)
        "CertificateInstallationRes": lambda: cm.CertificateInstallationResType(
            header=header, response_code=code, evse_processing="Finished",
            cps_certificate_chain=cm.CertificateChainType(certificate=bytes(1)),
            signed_installation_data=cm.SignedInstallationDataType(
                id="id1", contract_certificate_chain=cm.ContractCertificateChainType(
                    certificate=bytes(1),
                    sub_certificates=cm.SubCertificatesType(certificate=[bytes(1)])),
                ecdh_curve="SECP521", dh_public_key=bytes(133),
                secp521_encrypted_private_key=bytes(94)),
            remaining_contract_certificate_chains=0),
        "ServiceDiscoveryRes": lambda: cm.ServiceDiscoveryResType(
            header=header, response_code=code, service_renegotiation_supported=False,
            energy_transfer_service_list=cm.ServiceListType(
                service=[cm.ServiceType(service_id=2, free_service=False)])),
        "ServiceDetailRes": lambda: cm.ServiceDetailResType(
            header=header, response_code=code, service_id=0,
            service_parameter_list=cm.ServiceParameterListType(parameter_set=[
                cm.ParameterSetType(parameter_set_id=0, parameter=[
                    cm.ParameterType(name="ControlMode", int_value=1)])])),
        "ServiceSelectionRes": lambda: cm.ServiceSelectionResType(header=header,
                                                                  response_code=code),
        "ScheduleExchangeRes": lambda: cm.ScheduleExchangeResType(
            header=header, response_code=code, evse_processing="Finished",
            dynamic_se_res_control_mode=cm.Dynamic_SEResControlModeType()),
        "PowerDeliveryRes": lambda: cm.PowerDeliveryResType(header=header, response_code=code,
                                                            **terminate),
        "SessionStopRes": lambda: cm.SessionStopResType(header=header, response_code=code),
        "MeteringConfirmationRes": lambda: cm.MeteringConfirmationResType(header=header,
                                                                          response_code=code),
        "VehicleCheckInRes": lambda: cm.VehicleCheckInResType(header=header,
                                                              response_code=code),
        "VehicleCheckOutRes": lambda: cm.VehicleCheckOutResType(
            header=header, response_code=code, evse_check_out_status="Completed"),
        "DC_ChargeParameterDiscoveryRes": lambda: dc.DC_ChargeParameterDiscoveryResType(
            header=header, response_code=code, dc_cpd_res_energy_transfer_mode=_dc_cpd_res(limits)),
        "DC_CableCheckRes": lambda: dc.DC_CableCheckResType(header=header, response_code=code,
                                                            evse_processing="Finished"),
        "DC_PreChargeRes": lambda: dc.DC_PreChargeResType(
            header=header, response_code=code,
            evse_present_voltage=rational(present_voltage, dc)),
        "DC_ChargeLoopRes": lambda: dc.DC_ChargeLoopResType(
            header=header, response_code=code, **terminate,
            evse_present_current=rational(0, dc),
            evse_present_voltage=rational(present_voltage, dc),
            evse_power_limit_achieved=False, evse_current_limit_achieved=False,
            evse_voltage_limit_achieved=False,
            scheduled_dc_cl_res_control_mode=dc.Scheduled_DC_CLResControlModeType()),
        "DC_WeldingDetectionRes": lambda: dc.DC_WeldingDetectionResType(
            header=header, response_code=code,
            evse_present_voltage=rational(present_voltage, dc)),
        "AC_ChargeParameterDiscoveryRes": lambda: ac.AC_ChargeParameterDiscoveryResType(
            header=header, response_code=code, ac_cpd_res_energy_transfer_mode=_ac_cpd_res(limits)),
        "AC_ChargeLoopRes": lambda: ac.AC_ChargeLoopResType(
            header=header, response_code=code, **terminate,
            scheduled_ac_cl_res_control_mode=ac.Scheduled_AC_CLResControlModeType()),
    }
    build = builders.get(name)
    if build is not None:
        return name, build()
    # Requests we never implement (e.g. CertificateInstallation): the generic schema-valid
    # FAILED response, then the driver closes (the core is already safe). WPT/ACDP requests
    # cannot arrive: only the DC/AC namespaces are negotiated, and only their codecs loaded.
    _, response = failed.failed_response(module_of_message(name), request_name, code)
    if response is not None and hasattr(response, "header"):
        response.header = header
    return name, response


dc_cpd_res = _dc_cpd_res
ac_cpd_res = _ac_cpd_res
