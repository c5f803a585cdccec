"""The cold-start evaluation protocol: seeded splits, every system on the same split, one metric implementation.

Two protocols:
    shots  new users = the newest fraction of users by first interaction (random without timestamps); for each N in
           `shots`, support = a new user's first N interactions in time, query = the rest.
    melu   MeLU's four scenarios, when the ratings carry MeLU's `split` column (ml-1m-melu), or built from an item
           date column (`Protocol.item_split`, see `item_split_scenarios`): train on `meta_training`; per scenario
           user (13..100 ratings), 10 random query ratings and the rest as support.
Ranking is over the whole catalogue minus the support items; relevant = query items rated >= threshold.

Modules:
    protocol  Protocol, Task and the splits (new users, shots, MeLU scenarios)
    run       the systems, scoring one task, the run over seeds into a Report
    report    the terminal table, the report files and plot
    interview simulated onboarding: each strategy's questions, answers from the users' logs, then ranking
    compare   paired differences between systems over the same users, with 95% intervals
"""
from .interview import STRATEGIES, interview_study
from .compare import COLUMNS, Z95, format_paired, paired_differences, paired_tables, ratio_difference, verdict
from .protocol import Protocol, Task, item_split_scenarios, melu_tasks, shot_task, split_new_users
from .report import format_table, plot_report, split_rows, summarise, write_report
from .run import Report, combine_reports, default_systems, run_evaluation, run_seeds, score_task

__all__ = [
    # protocol
    "Protocol", "Task", "item_split_scenarios", "melu_tasks", "shot_task", "split_new_users",
    # run
    "Report", "combine_reports", "default_systems", "run_evaluation", "run_seeds", "score_task",
    # report
    "format_table", "plot_report", "split_rows", "summarise", "write_report",
    # interview
    "STRATEGIES", "interview_study",
    # compare
    "COLUMNS", "Z95", "format_paired", "paired_differences", "paired_tables", "ratio_difference", "verdict",
]
