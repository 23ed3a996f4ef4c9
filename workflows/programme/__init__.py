"""The standardization programme (基层党支部建设标准化): what the diagrams mean for a company.

Owns: the organization (`org`), the standard catalog, the functions the diagrams call (`scripts`),
the rectification ledger (a projection), spot checks, recurring obligations, inboxes and who may act
(`inbox`, `actions`), evidence files, read models (dashboard, overview, inspection), the demo
company and the programme's units of work (`units`).
May import `workflows.engine`; never `workflows.deadlines`, which sits above it.
"""
