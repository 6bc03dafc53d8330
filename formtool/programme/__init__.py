"""The monthly programme around the forms: who audits which case and by when, and what happens
to an audit after it is sent.

Owns sampling and allocation (allocation.py), the programme's dates (deadlines.py), sending
and chasing by email (mail.py, over smtp.py), the web form's private links, one-time codes
and drafts (weblinks.py) and a new link on request (relink.py), checking, sign-off, closing
and the checklist's second stage (workflow.py), moderation (moderation.py), the month's
status (status.py) and one audit's page (audit_page.py). It works through the store; the
forms it sends come from generate/ and the returns from read/.
"""
