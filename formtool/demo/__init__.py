"""`formtool demo` and what it is made of: the whole cycle on synthetic data (run.py), the
made-up population, auditors and answers (synthetic.py) and the filler that answers a
generated form the way Word, Excel or an auditor would (fill.py; the tests use it too).

Top of the house: it may call any other package; only `formtool demo` (cli.py) calls it.
"""
