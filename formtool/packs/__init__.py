"""What comes out for people to read: the file pack for each child's record (file.py), the PMU
pack's report and workbook for a month, quarter or year (pmu.py, workbook.py, from the figures
computed in figures.py, with charts.py), and the analysts' export (export.py). render.py lays
out Word and PDF documents; fonts.py finds and embeds the fonts they print in; tagged_pdf.py
gives the PDFs the structure a screen reader follows (headings, tables, figures with their
alternative text).
"""
