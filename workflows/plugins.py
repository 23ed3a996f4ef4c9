"""The one place the programme and the deadlines plug into the engine (imported by `workflows`).

Everything the engine runs that is not plain BPMN is registered here, in the order the scheduler runs
its jobs, so a reader sees the whole coupling between the layers on one page.
"""

from __future__ import annotations

from workflows.deadlines import escalation, form_checks, jobs
from workflows.deadlines import scripts as deadline_scripts
from workflows.deadlines.channels import SmtpSettings
from workflows.engine import extensions, runner
from workflows.engine.extensions import Job
from workflows.programme import (
    coordination,
    form_refs,
    ledger,
    obligation_scripts,
    units,
    year_scripts,
    years,
)
from workflows.programme import scripts as programme_scripts

DIGEST_HOUR = 8  # Beijing time

extensions.register_script_functions(
    {
        fn.__name__: fn
        for fn in (*programme_scripts.FUNCTIONS, *year_scripts.FUNCTIONS, *deadline_scripts.FUNCTIONS)
    }
)
extensions.register_script_functions({fn.__name__: fn for fn in obligation_scripts.FUNCTIONS})
extensions.register_projection(ledger.PROCESS_ID, ledger.project)
extensions.register_projection(years.PROCESS_ID, years.project)
extensions.register_projection(coordination.PROCESS_ID, coordination.project)
extensions.register_timer_meaning(escalation.timer_meaning)
extensions.register_form_check(form_refs.check_people)
extensions.register_form_check(form_checks.check_deadlines)

extensions.register_job(Job("sweep", lambda factory, clock: runner.sweep(factory, clock=clock)))
extensions.register_job(Job("messages", lambda factory, clock: runner.deliver_messages(factory, clock=clock)))
extensions.register_job(
    Job("deliver", lambda factory, clock: jobs.deliver(factory, clock=clock, smtp=SmtpSettings.from_env()))
)
extensions.register_job(
    Job("obligations", lambda factory, clock: units.generate_occurrences(factory, clock=clock), every="hour")
)
extensions.register_job(
    Job("spot_checks", lambda f, clock: units.start_scheduled_spot_checks(f, clock=clock), every="hour")
)
extensions.register_job(
    Job(
        "checkpoint",
        lambda factory, clock: jobs.send_checkpoint(factory, clock=clock),
        every="day",
        hour=DIGEST_HOUR,
    )
)
extensions.register_job(
    Job(
        "digests",
        lambda factory, clock: jobs.send_digests(factory, clock=clock),
        every="day",
        hour=DIGEST_HOUR,
    )
)
