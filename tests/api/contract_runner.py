"""Driving Schemathesis over operations of /api/openapi.json from inside one test.

schemathesis.pytest.from_fixture() would make each operation a subtest, but 4.32.5 renames the
pytest node through ``Function._nodeid``, which pytest 9.2 no longer has; so each operation's
cases come from the public ``APIOperation.as_strategy()`` under Hypothesis' ``given``, and every
failure is collected, so that one run names all of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
MAX_EXAMPLES = 10  # per operation, role and mode (valid and invalid requests)
EXPLORE = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same cases on every run
    database=None,
    deadline=None,
    # The shop changes under the requests, so a failure is reported as found, not shrunk.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
CONFIG = {"generation": {
    # The role's token is sent by the test; invented tokens would only ever meet the 401 path.
    "with-security-parameters": False,
}}


@dataclass
class Outcome:
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)
    by_operation: dict[str, Counter] = field(default_factory=dict)  # statuses per operation


def load(app, known: dict):
    """The app's own document, where a field named in ``known`` (an id, a share token, a
    sign-in code) takes one of its known values three times in four, so that requests reach
    real rows as well as missing ones. A known value is a list, a strategy, or a function of
    the operation returning either (a code means one thing to sign-in, another to a phone)."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app,
                                            config=schemathesis.Config.from_dict(CONFIG))

    def with_known_values(value, operation):
        if isinstance(value, dict):
            return st.fixed_dictionaries({
                name: (_mostly(known[name], item, operation) if name in known
                       else with_known_values(item, operation))
                for name, item in value.items()})
        if isinstance(value, list):
            return st.tuples(*(with_known_values(item, operation) for item in value)).map(list)
        return st.just(value)

    for location in ("path_parameters", "query", "body"):
        schema.hook(f"flatmap_{location}")(
            lambda context, value: with_known_values(value, context.operation))
    return schema


def _mostly(values, generated, operation) -> st.SearchStrategy:
    if callable(values):
        values = values(operation)
    real = values if isinstance(values, st.SearchStrategy) else st.sampled_from(values)
    return st.one_of(real, real, real, st.just(generated))


def is_signed_in(operation) -> bool:
    return bool(operation.definition.raw.get("security"))


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


def explore(selected: list, headers: Callable[[], dict]) -> Outcome:
    """Every operation with valid and invalid requests, each sent with fresh ``headers()``.

    The requests go from a thread of their own: in the test's thread, the app context that
    the fixtures pushed would be shared by every request, with its database session and
    ``g``, where a deployed worker gives each request fresh ones.
    """
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(_explore, selected, headers).result()


def _explore(selected: list, headers: Callable[[], dict]) -> Outcome:
    outcome = Outcome()
    for operation in selected:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} ({mode.value})"
            try:
                _send_cases(operation, mode, headers, outcome)
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (no parameters, free text).
                if mode is GenerationMode.POSITIVE:
                    outcome.failures[label] = "no request could be generated"
            # Schemathesis raises failed checks as a BaseExceptionGroup; anything the app
            # raised is collected too, so every operation still runs.
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001
                outcome.failures[label] = str(exc)
    return outcome


def _send_cases(operation, mode: GenerationMode, headers: Callable[[], dict],
                outcome: Outcome) -> None:
    statuses = outcome.by_operation.setdefault(operation.label, Counter())

    @EXPLORE
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        outcome.cases += 1
        response = case.call(headers=headers())
        outcome.statuses[response.status_code] += 1
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    send()


def report(failures: dict[str, str]) -> str:
    return f"{len(failures)} failing:\n\n" + "\n\n".join(
        f"== {label}\n{message}" for label, message in failures.items())
