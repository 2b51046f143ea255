"""The benchmark suite (issue 6): `python -m bench all|locations|serialize|push|tariff|export`.

Each benchmark builds its data, starts what it measures on 127.0.0.1 and records its figures;
the report (bench/report.py) prints them in one table with the machine they ran on. README.md
keeps the latest table.
"""
