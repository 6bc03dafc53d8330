"""Data protection through the data's life: retention (retention.py), subject access
(subject_access.py), correction (correction.py) and erasure (erasure.py) of one child's or
member of staff's records, and the anonymised period summaries (summary.py) that keep reported
figures reproducible after records are removed."""
