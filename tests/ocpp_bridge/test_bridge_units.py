"""Sans-I/O pieces of the bridge: the persistent queue, relaxed OCPP schema, config, device
model, certificate hash data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType

from ocpp_bridge.certificates import CertificateStore, hash_data
from ocpp_bridge.config import ConfigError, from_dict, load, to_toml
from ocpp_bridge.device_model import DeviceModel
from ocpp_bridge.ocpp_io import validate_ocpp
from ocpp_bridge.queue import TransactionQueue


def event(message_id: str, kind: str, session: str = "s1", **extra) -> dict:
    return {"message_id": message_id, "event_type": kind, "session_id": session,
            "timestamp": "2026-01-01T00:00:00Z", "trigger_reason": "Authorized", **extra}


def test_duplicate_message_id_is_acked_but_never_queued_twice(tmp_path):
    queue = TransactionQueue(tmp_path / "q.db")
    first = queue.enqueue_transaction_event(1, event("m-000001", "Started"), offline=False, now=0)
    again = queue.enqueue_transaction_event(1, event("m-000001", "Started"), offline=False, now=1)
    assert not first.duplicate and again.duplicate
    assert queue.pending() == 1


def test_queue_survives_reopen_with_seqno_continuing(tmp_path):
    queue = TransactionQueue(tmp_path / "q.db")
    queue.enqueue_transaction_event(1, event("m-000001", "Started"), offline=False, now=0)
    queue.close()
    queue = TransactionQueue(tmp_path / "q.db")
    second = queue.enqueue_transaction_event(1, event("m-000002", "Updated"), offline=True, now=1)
    assert second.seq_no == 1
    head = queue.head()
    assert head.payload["seqNo"] == 0 and "offline" not in head.payload
    queue.mark_sent(head.row_id)
    assert queue.head().payload == {**queue.head().payload, "seqNo": 1, "offline": True}


def test_backoff_grows_and_refusals_park_after_message_attempts(tmp_path):
    queue = TransactionQueue(tmp_path / "q.db", backoff_initial=1, backoff_max=4,
                             message_attempts=3)
    queue.enqueue_transaction_event(1, event("m-000001", "Started"), offline=False, now=0)
    head = queue.head()
    assert queue.mark_failed(head.row_id, "timeout", 10, refused=False) == 11
    assert queue.mark_failed(head.row_id, "timeout", 10, refused=False) == 12
    assert queue.mark_failed(head.row_id, "timeout", 10, refused=False) == 14
    assert queue.mark_failed(head.row_id, "timeout", 10, refused=False) == 14   # capped
    assert queue.pending() == 1          # timeouts never park
    for _ in range(3):
        queue.mark_failed(head.row_id, "FormatViolation", 10, refused=True)
    assert queue.pending() == 0 and queue.dead()[0][0] == "m-000001"


def test_meter_values_outside_a_transaction_become_meter_values_request(tmp_path):
    queue = TransactionQueue(tmp_path / "q.db")
    message = {"message_id": "mv-00001", "readings": [{"timestamp": "2026-01-01T00:00:00Z",
               "samples": [{"measurand": "Energy.Active.Import.Register", "value": 5.0,
                            "signed": {"signed_meter_data": "OCMF|{}|{}",
                                       "signing_method": "", "encoding_method": "OCMF",
                                       "public_key": ""}}]}]}
    queued = queue.enqueue_meter_values(2, message, offline=False, now=0)
    assert queued.action == "MeterValues"
    payload = queue.head().payload
    validate_ocpp("MeterValues", MessageType.Call, payload)
    assert payload["meterValue"][0]["sampledValue"][0]["signedMeterValue"]["encodingMethod"] == \
        "OCMF"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=25))
def test_seqno_is_consecutive_per_transaction_for_any_interleaving(tmp_path_factory, sessions):
    queue = TransactionQueue(tmp_path_factory.mktemp("q") / "q.db")
    for index, session in enumerate(sessions):
        queue.enqueue_transaction_event(1, event(f"m-{index:06d}", "Updated", session),
                                        offline=False, now=index)
    per_tx: dict[str, list[int]] = {}
    while (head := queue.head()) is not None:
        validate_ocpp("TransactionEvent", MessageType.Call, head.payload)
        per_tx.setdefault(head.payload["transactionInfo"]["transactionId"], []).append(
            head.payload["seqNo"])
        queue.mark_sent(head.row_id)
    assert len(per_tx) == len(set(sessions))
    assert all(seqs == list(range(len(seqs))) for seqs in per_tx.values())


def test_exi_response_relaxed_to_17000_only_for_that_field():
    ok = {"status": "Accepted", "exiResponse": "A" * 17000}
    validate_ocpp("Get15118EVCertificate", MessageType.CallResult, ok)
    with pytest.raises(OCPPError):
        validate_ocpp("Get15118EVCertificate", MessageType.CallResult,
                      {**ok, "exiResponse": "A" * 17001})
    with pytest.raises(OCPPError):   # other limits of the same schema still hold
        validate_ocpp("Get15118EVCertificate", MessageType.CallResult,
                      {**ok, "statusInfo": {"reasonCode": "x" * 21}})
    with pytest.raises(OCPPError):   # the request keeps its official 5600 limit
        validate_ocpp("Get15118EVCertificate", MessageType.Call, {
            "iso15118SchemaVersion": "x", "action": "Install", "exiRequest": "A" * 5601})


def test_config_roundtrips_through_toml_and_rejects_unknown_keys(tmp_path):
    config = from_dict({"csms": {"url": "ws://127.0.0.1:9000/ocpp", "station_id": "CS1",
                                 "password": "pw"}, "station": {"evse_ids": [1, 2]}})
    path = tmp_path / "b.toml"
    path.write_text(to_toml(config))
    assert load(path) == config
    with pytest.raises(ConfigError, match="unknown keys: colour"):
        from_dict({"csms": {"url": "ws://x/ocpp", "station_id": "CS1", "password": "p",
                            "colour": "red"}})
    with pytest.raises(ConfigError, match="missing"):
        from_dict({})


def test_device_model_persists_csms_changes(tmp_path):
    model = DeviceModel(tmp_path / "dm.json")
    assert model.set_variable("OCPPCommCtrlr", "HeartbeatInterval", "0") == "Rejected"
    assert model.set_variable("OCPPCommCtrlr", "HeartbeatInterval", "42") == "Accepted"
    assert model.get_variable("ISO15118Ctrlr", "PnCEnabled", "Target") == (
        "NotSupportedAttributeType", None)
    assert DeviceModel(tmp_path / "dm.json").get("OCPPCommCtrlr", "HeartbeatInterval") == 42


def test_root_hash_data_matches_ocpp_definition(tmp_path, test_pki):
    import hashlib

    from cryptography.hazmat.primitives import serialization
    store = CertificateStore(tmp_path / "certs")
    assert store.install_root("V2GRootCertificate", test_pki.v2g_root.cert_pem.decode()) == \
        "Accepted"
    root = test_pki.v2g_root.cert
    data = hash_data(root, root)
    point = root.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    assert data["issuerKeyHash"] == hashlib.sha256(point).hexdigest()
    assert data["issuerNameHash"] == hashlib.sha256(root.subject.public_bytes()).hexdigest()
    assert store.installed_ids(["V2GRootCertificate"])[0]["certificateHashData"] == data


def test_prune_forgets_old_delivered_messages_but_keeps_undelivered(tmp_path):
    queue = TransactionQueue(tmp_path / "q.db")
    queue.enqueue_transaction_event(1, event("m-000001", "Started"), offline=False, now=0)
    queue.enqueue_transaction_event(1, event("m-000002", "Ended"), offline=False, now=1)
    queue.mark_sent(queue.head().row_id)
    assert queue.prune(now=10 * 86400) == 1
    assert queue.pending() == 1
    again = queue.enqueue_transaction_event(1, event("m-000002", "Ended"), offline=False, now=2)
    assert again.duplicate      # undelivered ones are still recognised
