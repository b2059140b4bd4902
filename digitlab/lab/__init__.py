"""The lab's own data and jobs: the SQLite database, saved drawings, training runs, their worker and the
promotion of a run's model to the one in use."""
