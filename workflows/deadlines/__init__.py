"""Deadlines: the working-day calendar, the escalation ladder, notifications and their channels,
iCalendar feeds and daily digests — when work is due, and who hears of it when it is late.

It sits above the programme because telling people needs the organization (who is a branch's
secretary, contact member, the office) and their inboxes; the programme never imports it.
May import `workflows.programme` and `workflows.engine`.
"""
