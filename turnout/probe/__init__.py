"""`turnout probe`: send every model one short prompt and report what answered.

    targets.py   which models: the live pool, the filtered catalogue, or a gateway's models,
                 narrowed by tier, substring and ids; the plan and its estimated duration
    pacing.py    free models wait for the account's free quota (`FreeTierBudget`), not a fixed sleep
    call.py      one probe call (JSON or SSE), its failure classified by `upstream.failures`
    runner.py    bounded concurrency over the plan; cancellation keeps what finished
    results.py   the JSON report, the summary, and `--resume`
    display.py   the progress bar and the summary table (rich)
    arguments.py the flags (argparse only: `turnout --help` loads nothing else)
    command.py   the CLI glue, and `--feed` (POST /admin/probe on a running gateway)

Nothing here imports LiteLLM: a probe calls OpenRouter's (or the gateway's) HTTP API directly.
"""
