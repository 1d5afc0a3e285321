"""The target's gate: a build passes only if its artifact is close enough to the teacher."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgekd.schema.sections import GateSection, Status


def gate_of(target, validation: dict) -> GateSection:
    """The target's accuracy (and agreement) gate on a validation; undecided when the artifact did not run."""
    gate = target.gate
    teacher_acc = validation["teacher"]["accuracy"]
    artifact = validation["artifact"]
    if artifact.get("not_run"):  # never "passed" for an artifact that did not run
        return GateSection.not_run(artifact["not_run"], gate.max_accuracy_drop, gate.min_agreement)
    drop = (teacher_acc - artifact["accuracy"]) * 100.0
    reasons, passed = [], True
    if drop > gate.max_accuracy_drop:
        passed = False
        reasons.append(f"artifact top-1 {artifact['accuracy'] * 100:.2f}% is {drop:.2f} points below the "
                       f"teacher's {teacher_acc * 100:.2f}% (allowed: {gate.max_accuracy_drop:.2f})")
    if gate.min_agreement is not None and artifact["agreement_teacher"] < gate.min_agreement:
        passed = False
        reasons.append(f"top-1 agreement with the teacher {artifact['agreement_teacher']:.4f} < "
                       f"{gate.min_agreement:.4f}")
    return GateSection(passed=passed, accuracy_drop_points=drop, max_accuracy_drop=gate.max_accuracy_drop,
                       min_agreement=gate.min_agreement, reasons=reasons)


def evaluate_gate(target, validation: dict) -> dict:
    """:func:`gate_of` as report.json's ``gate`` dict: ``passed`` (None: not run here), reasons for people."""
    return gate_of(target, validation).to_dict()


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % (z=1.96) Wilson score interval of a binomial proportion: what ``n`` samples can tell."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class GateVerdict:
    """The target's gate applied to one validated artifact (what ``compile(val=...)`` attaches)."""

    target: str
    passed: bool | None  # None: the artifact could not run here
    status: str  # a Status value: "passed", "failed" or "not run here"
    samples: int
    agreement: float | None  # top-1 agreement with the reference (the teacher, or the fp32 original)
    agreement_ci95: tuple[float, float] | None  # Wilson interval of ``agreement`` over ``samples``
    accuracy_drop_points: float | None
    max_accuracy_drop: float
    min_agreement: float | None
    reasons: list[str] = field(default_factory=list)
    samples_available: int | None = None  # more than ``samples`` when validation was capped (emulators)
    recovery: dict | None = None  # the float-fallback attempt when the gate first missed

    def to_json(self) -> dict:
        data = asdict(self)
        data["agreement_ci95"] = list(self.agreement_ci95) if self.agreement_ci95 else None
        return data

    @classmethod
    def from_validation(cls, target, validation: dict, gate: GateSection | dict | None = None) -> "GateVerdict":
        gate = GateSection.from_dict(gate) if gate is not None else gate_of(target, validation)
        art, n = validation["artifact"], int(validation["samples"])
        agree = art.get("agreement_teacher")
        ci = wilson_interval(round(agree * n), n) if agree is not None else None
        return cls(target=target.name, passed=gate.passed, status=Status(gate.status).value, samples=n,
                   agreement=agree, agreement_ci95=ci, accuracy_drop_points=gate.accuracy_drop_points,
                   max_accuracy_drop=gate.max_accuracy_drop, min_agreement=gate.min_agreement,
                   reasons=list(gate.reasons), samples_available=validation.get("samples_available"))
