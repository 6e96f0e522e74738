"""OpenLineage in and out: events from Airflow, dbt, Spark become recorded runs, and every
recorded run can be written back as OpenLineage RunEvents.

``events`` checks one event against the shipped 2-0-2 schemas; ``journal`` keeps accepted
events durably in the lake; ``intake`` turns a run's events into receipts and records them
the way ``kfm-prov record`` does; ``emit`` writes runs as events.
"""
