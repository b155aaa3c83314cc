"""Why a request fails, and the ONE table mapping each reason to a response code per protocol.

Handlers raise ``SessionFailure(Failure.X, "detail")``; the session core turns it into the
protocol's response code through ``RESPONSE_CODES``. Nothing else in the stack spells a
FAILED_* string.
"""

from __future__ import annotations

import enum


class Failure(enum.Enum):
    GENERAL = "general"
    SEQUENCE_ERROR = "sequence_error"
    UNKNOWN_SESSION = "unknown_session"
    SERVICE_ID_INVALID = "service_id_invalid"
    SERVICE_SELECTION_INVALID = "service_selection_invalid"
    PAYMENT_SELECTION_INVALID = "payment_selection_invalid"
    NO_CHARGE_SERVICE_SELECTED = "no_charge_service_selected"
    WRONG_ENERGY_TRANSFER_MODE = "wrong_energy_transfer_mode"
    WRONG_CHARGE_PARAMETER = "wrong_charge_parameter"
    POWER_DELIVERY_NOT_APPLIED = "power_delivery_not_applied"
    TARIFF_SELECTION_INVALID = "tariff_selection_invalid"
    CHARGING_PROFILE_INVALID = "charging_profile_invalid"
    EVSE_PRESENT_VOLTAGE_TOO_LOW = "evse_present_voltage_too_low"
    CONTACTOR_ERROR = "contactor_error"
    METERING_SIGNATURE_NOT_VALID = "metering_signature_not_valid"
    CERTIFICATE_EXPIRED = "certificate_expired"
    CERTIFICATE_REVOKED = "certificate_revoked"
    CERTIFICATE_NOT_ALLOWED = "certificate_not_allowed"
    CERT_CHAIN_ERROR = "cert_chain_error"
    CERTIFICATE_NOT_YET_VALID = "certificate_not_yet_valid"
    SIGNATURE_ERROR = "signature_error"
    CHALLENGE_INVALID = "challenge_invalid"
    NO_CERTIFICATE_AVAILABLE = "no_certificate_available"
    CONTRACT_CANCELED = "contract_canceled"
    PAUSE_NOT_ALLOWED = "pause_not_allowed"
    AUTHORIZATION_REJECTED = "authorization_rejected"
    PNC_AUTHORIZATION_REJECTED = "pnc_authorization_rejected"  # the eMSP refused the contract
    SERVICE_RENEGOTIATION_NOT_SUPPORTED = "service_renegotiation_not_supported"


class SessionFailure(Exception):
    """A request that gets a FAILED response; the session then ends in a safe state."""

    def __init__(self, failure: Failure, detail: str = "") -> None:
        super().__init__(f"{failure.value}: {detail}" if detail else failure.value)
        self.failure = failure
        self.detail = detail


# Names shared by DIN 70121 and ISO 15118-2 (their responseCodeType enumerations).
_DIN_ISO2_COMMON = {
    Failure.GENERAL: "FAILED",
    Failure.SEQUENCE_ERROR: "FAILED_SequenceError",
    Failure.UNKNOWN_SESSION: "FAILED_UnknownSession",
    Failure.SERVICE_ID_INVALID: "FAILED_ServiceIDInvalid",
    Failure.SERVICE_SELECTION_INVALID: "FAILED_ServiceSelectionInvalid",
    Failure.PAYMENT_SELECTION_INVALID: "FAILED_PaymentSelectionInvalid",
    Failure.WRONG_CHARGE_PARAMETER: "FAILED_WrongChargeParameter",
    Failure.POWER_DELIVERY_NOT_APPLIED: "FAILED_PowerDeliveryNotApplied",
    Failure.TARIFF_SELECTION_INVALID: "FAILED_TariffSelectionInvalid",
    Failure.CHARGING_PROFILE_INVALID: "FAILED_ChargingProfileInvalid",
    Failure.METERING_SIGNATURE_NOT_VALID: "FAILED_MeteringSignatureNotValid",
    Failure.CERTIFICATE_EXPIRED: "FAILED_CertificateExpired",
    Failure.CERT_CHAIN_ERROR: "FAILED_CertChainError",
    Failure.CERTIFICATE_NOT_YET_VALID: "FAILED_CertChainError",
    Failure.SIGNATURE_ERROR: "FAILED_SignatureError",
    Failure.CHALLENGE_INVALID: "FAILED_ChallengeInvalid",
    Failure.NO_CERTIFICATE_AVAILABLE: "FAILED_NoCertificateAvailable",
    Failure.CONTRACT_CANCELED: "FAILED_ContractCanceled",
    Failure.AUTHORIZATION_REJECTED: "FAILED",
    Failure.PNC_AUTHORIZATION_REJECTED: "FAILED",
    Failure.PAUSE_NOT_ALLOWED: "FAILED",
    Failure.SERVICE_RENEGOTIATION_NOT_SUPPORTED: "FAILED",
}

RESPONSE_CODES: dict[str, dict[Failure, str]] = {
    "din": {
        **_DIN_ISO2_COMMON,
        Failure.NO_CHARGE_SERVICE_SELECTED: "FAILED_ServiceSelectionInvalid",
        Failure.WRONG_ENERGY_TRANSFER_MODE: "FAILED_WrongEnergyTransferType",
        Failure.EVSE_PRESENT_VOLTAGE_TOO_LOW: "FAILED_EVSEPresentVoltageToLow",
        Failure.CONTACTOR_ERROR: "FAILED_PowerDeliveryNotApplied",
        Failure.CERTIFICATE_REVOKED: "FAILED_CertChainError",
        Failure.CERTIFICATE_NOT_ALLOWED: "FAILED_CertChainError",
    },
    "iso2": {
        **_DIN_ISO2_COMMON,
        Failure.NO_CHARGE_SERVICE_SELECTED: "FAILED_NoChargeServiceSelected",
        Failure.WRONG_ENERGY_TRANSFER_MODE: "FAILED_WrongEnergyTransferMode",
        Failure.EVSE_PRESENT_VOLTAGE_TOO_LOW: "FAILED",
        Failure.CONTACTOR_ERROR: "FAILED_ContactorError",
        Failure.CERTIFICATE_REVOKED: "FAILED_CertificateRevoked",
        Failure.CERTIFICATE_NOT_ALLOWED: "FAILED_CertificateNotAllowedAtThisEVSE",
    },
    "iso20": {
        Failure.GENERAL: "FAILED",
        Failure.SEQUENCE_ERROR: "FAILED_SequenceError",
        Failure.UNKNOWN_SESSION: "FAILED_UnknownSession",
        Failure.SERVICE_ID_INVALID: "FAILED_ServiceIDInvalid",
        Failure.SERVICE_SELECTION_INVALID: "FAILED_ServiceSelectionInvalid",
        Failure.PAYMENT_SELECTION_INVALID: "WARNING_AuthorizationSelectionInvalid",
        Failure.NO_CHARGE_SERVICE_SELECTED: "FAILED_NoEnergyTransferServiceSelected",
        Failure.WRONG_ENERGY_TRANSFER_MODE: "FAILED_NoEnergyTransferServiceSelected",
        Failure.WRONG_CHARGE_PARAMETER: "FAILED_WrongChargeParameter",
        Failure.POWER_DELIVERY_NOT_APPLIED: "FAILED_PowerDeliveryNotApplied",
        Failure.TARIFF_SELECTION_INVALID: "FAILED_ScheduleSelectionInvalid",
        Failure.CHARGING_PROFILE_INVALID: "FAILED_EVPowerProfileInvalid",
        Failure.EVSE_PRESENT_VOLTAGE_TOO_LOW: "FAILED",
        Failure.CONTACTOR_ERROR: "FAILED_ContactorError",
        Failure.METERING_SIGNATURE_NOT_VALID: "FAILED_MeteringSignatureNotValid",
        Failure.CERTIFICATE_EXPIRED: "WARNING_CertificateExpired",
        Failure.CERTIFICATE_REVOKED: "WARNING_CertificateRevoked",
        Failure.CERTIFICATE_NOT_ALLOWED: "WARNING_CertificateValidationError",
        Failure.CERT_CHAIN_ERROR: "WARNING_CertificateValidationError",
        Failure.CERTIFICATE_NOT_YET_VALID: "WARNING_CertificateNotYetValid",
        Failure.SIGNATURE_ERROR: "FAILED_SignatureError",
        Failure.CHALLENGE_INVALID: "WARNING_ChallengeInvalid",
        Failure.NO_CERTIFICATE_AVAILABLE: "WARNING_NoCertificateAvailable",
        Failure.CONTRACT_CANCELED: "WARNING_GeneralPnCAuthorizationError",
        Failure.AUTHORIZATION_REJECTED: "WARNING_EIMAuthorizationFailure",
        Failure.PNC_AUTHORIZATION_REJECTED: "WARNING_GeneralPnCAuthorizationError",
        Failure.PAUSE_NOT_ALLOWED: "FAILED_PauseNotAllowed",
        Failure.SERVICE_RENEGOTIATION_NOT_SUPPORTED: "FAILED_NoServiceRenegotiationSupported",
    },
}


def response_code(protocol: str, failure: Failure) -> str:
    return RESPONSE_CODES[protocol][failure]


def is_failed(code: str) -> bool:
    """FAILED* codes end the session (WARNING_* in -20 do not)."""
    return code.startswith("FAILED")
