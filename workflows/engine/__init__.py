"""The engine: running BPMN durably, one transaction per step. It knows no process and no domain.

Owns: deployed specs (`specs`), instances and the step (`instances`), units of work (`runner`), the
task index (`tasks`), the timer index (`timers`), the audit chain (`audit`), form validation
(`forms`), database and sessions (`db`, `models`, `prepared`), the clock seam (`clock`, `spiff`),
errors, the consistency check and interventions on running instances.
Imports nothing from `workflows.programme` or `workflows.deadlines`; what they add to a step they
register through `extensions`.
"""
