"""Airflow DAG running the veil nightly pipeline for the DAG run's logical date.

veil run is idempotent per (pipeline, logical date): a retried or re-run task
is a no-op once the date completed, and a crashed attempt resumes from its
last completed step. Exit code 4 (another run holds the lock) and 3 (refused
by policy) are not worth retrying; 1 is.
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="veil_nightly",
    schedule="30 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=True,          # backfills run one logical date each
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
) as dag:
    BashOperator(
        task_id="veil_run",
        bash_command="veil run /etc/veil/nightly.yaml --logical-date {{ ds }} --log-format json",
        skip_on_exit_code=[4],  # another run of this date is active
        # The data steward's policy, pinned by the deployment: a step that
        # names another policy file is refused (exit 3).
        env={"VEIL_POLICY": "/etc/veil/policy.yaml"},
        append_env=True,
    )
