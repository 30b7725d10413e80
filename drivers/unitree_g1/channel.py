"""DDS endpoints for the unitree_hg messages: a participant on one NIC and domain, and raw writers /
readers that move CDR bytes (messages.py packs them), bypassing cyclonedds's slow Python serialiser.

The raw path uses cyclonedds's own C layer calls (`ddspy_write`, `ddspy_take`), the ones its
DataWriter.write / DataReader.take make after serialising; tests/drivers/test_unitree_g1_messages.py
checks that what goes through it is what cyclonedds's typed API would have sent and received.
"""

from __future__ import annotations

import threading

from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.pub import DataWriter, ddspy_write
from cyclonedds.qos import Policy, Qos
from cyclonedds.sub import DataReader, ddspy_take
from cyclonedds.topic import Topic
from cyclonedds.util import duration

_ANY = SampleState.Any | ViewState.Any | InstanceState.Any
_DOMAINS: dict[int, tuple[str, Domain]] = {}  # one configuration per domain and process
_LOCK = threading.Lock()


def domain_config(interface: str) -> str:
    """CycloneDDS XML for a NIC. "lo": unicast discovery on 127.0.0.1 (loopback has no multicast)."""
    if not interface:
        return ""
    if interface == "lo":
        return ("<CycloneDDS><Domain><General><Interfaces><NetworkInterface name='lo'/></Interfaces>"
                "<AllowMulticast>false</AllowMulticast></General><Discovery><Peers><Peer address='127.0.0.1'/>"
                "</Peers><ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>30</MaxAutoParticipantIndex>"
                "</Discovery></Domain></CycloneDDS>")
    return (f"<CycloneDDS><Domain><General><Interfaces><NetworkInterface name='{interface}'/></Interfaces>"
            "</General></Domain></CycloneDDS>")


def participant(domain_id: int, interface: str) -> DomainParticipant:
    """A participant on `domain_id` over `interface` (the domain is configured once per process)."""
    config = domain_config(interface)
    with _LOCK:
        known = _DOMAINS.get(domain_id)
        if known is None:
            _DOMAINS[domain_id] = (config, Domain(domain_id, config=config or None))
        elif known[0] != config:
            raise ValueError(f"DDS domain {domain_id} is already configured for another interface in this process")
    return DomainParticipant(domain_id)


# Best effort, keep the newest only: a late state or command is worth nothing (as unitree_sdk2's channels).
_QOS = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(1), Policy.Durability.Volatile)


class RawWriter:
    """Writes CDR bytes (CDR header included) of `idl_type` on `topic_name`."""

    def __init__(self, dp: DomainParticipant, topic_name: str, idl_type: type) -> None:
        self.topic = Topic(dp, topic_name, idl_type)
        self.writer = DataWriter(dp, self.topic, qos=_QOS)
        self.n_written = 0

    def write(self, data: bytes) -> None:
        ret = ddspy_write(self.writer._ref, data)
        if ret < 0:
            raise RuntimeError(f"DDS write on {self.topic.name} failed ({ret})")
        self.n_written += 1


class RawReader:
    """Takes CDR bytes of `idl_type` from `topic_name`; `wait(timeout_s)` blocks until data arrives."""

    def __init__(self, dp: DomainParticipant, topic_name: str, idl_type: type) -> None:
        self.topic = Topic(dp, topic_name, idl_type)
        self.reader = DataReader(dp, self.topic, qos=Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(8)))
        self._cond = ReadCondition(self.reader, _ANY)
        self._waitset = WaitSet(dp)
        self._waitset.attach(self._cond)

    def wait(self, timeout_s: float) -> bool:
        return self._waitset.wait(duration(seconds=timeout_s)) > 0

    def take(self, n: int = 8) -> list[bytes]:
        return [data for data, _ in self.take_stamped(n)]

    def take_stamped(self, n: int = 8) -> list[tuple[bytes, float]]:
        """(CDR bytes, the writer's source timestamp in s, unix time) of up to n samples."""
        ret = ddspy_take(self.reader._ref, _ANY, n)
        if isinstance(ret, int):
            raise RuntimeError(f"DDS take on {self.topic.name} failed ({ret})")
        return [(data, info.source_timestamp * 1e-9) for data, info in ret if info.valid_data]
