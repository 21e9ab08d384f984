"""The `kaon` command line: init, serve, inputs, tokens, ..."""

import argparse
import json
import os
import sys
from collections.abc import Sequence

from kaon.errors import KaonError
from kaon.settings import Settings
from kaon.store import files


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (default $KAON_DATA_DIR or ./kaon-data)")
    parser.add_argument("--database", dest="database_url", help="database URL (default $KAON_DATABASE_URL "
                        "or sqlite:///DATA_DIR/kaon.db)")


WORKSPACE_HELP = "workspace name (default: the only workspace, the one `kaon init` made)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kaon", description="Kaon, a self-hosted customer data platform.")
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="create the data store, a workspace, inputs and an admin token")
    _common(init)
    init.add_argument("--workspace", help="workspace name (default: `default`, or the only workspace there is)")
    shown = init.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print one JSON object")
    shown.add_argument("--shell", action="store_true",
                       help="print `export KAON_...=` lines for `eval \"$(kaon init --shell)\"`")

    serve = sub.add_parser("serve", help="run collection, processing and the admin API in one process")
    _common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--process-stage", choices=("process", "thread"),
                       help="run the process stage in its own OS process (default) or in a thread "
                       "(default $KAON_PROCESS_STAGE or process)")
    serve.add_argument("--access-log", action="store_true", default=None,
                       help="log every request to stderr (default $KAON_ACCESS_LOG, off)")
    serve.add_argument("--role", choices=("all", "collect", "process", "deliver"),
                       help="what this process runs: everything (default, $KAON_ROLE or all) or one role of a "
                       "cluster on PostgreSQL: collect (the doors), process (log partitions by lease) or deliver")

    inputs = sub.add_parser("inputs", help="manage inputs (platforms and feeds)")
    _common(inputs)
    inputs.add_argument("--workspace", help=WORKSPACE_HELP)
    inputs.add_argument("--json", action="store_true", help="print JSON")
    isub = inputs.add_subparsers(dest="action", required=True)
    isub.add_parser("list", help="list inputs")
    create = isub.add_parser("create", help="create an input")
    create.add_argument("--name", required=True)
    create.add_argument("--platform", required=True, help="web, ios, android, server, ... or feed")
    create.add_argument("--feed", action="store_true", help="a partner or custom feed")
    create.add_argument("--key-only", action="store_true", help="accept key-only (Segment write key) calls")
    create.add_argument("--rate-limit", type=float, help="requests/s allowed (default unlimited)")
    for name, text in (("disable", "refuse the input's key"), ("enable", "accept the input's key again"),
                       ("rotate-secret", "issue a new secret (the old one stops working)")):
        action = isub.add_parser(name, help=text)
        action.add_argument("input_id")
    tokens = sub.add_parser("tokens", help="manage admin tokens (list, create, revoke)")
    tsub = tokens.add_subparsers(dest="action", required=True)
    tlist = tsub.add_parser("list", help="list admin tokens (never the tokens themselves)")
    tcreate = tsub.add_parser("create", help="create an admin token (shown once)")
    tcreate.add_argument("--name", required=True)
    tcreate.add_argument("--scope", choices=("read", "write"), default="read",
                         help="read: GET routes only; write: every route (default read)")
    tcreate.add_argument("--operator", action="store_true",
                         help="also see rejections that belong to no workspace (unauthenticated requests)")
    tcreate.add_argument("--expires-days", type=float, help="days until it stops working (default never)")
    trevoke = tsub.add_parser("revoke", help="revoke an admin token by its id (it answers 401 from then on)")
    trevoke.add_argument("token_id")
    for leaf in (tlist, tcreate, trevoke):
        _common(leaf)
        leaf.add_argument("--workspace", help=WORKSPACE_HELP)
        leaf.add_argument("--json", action="store_true", help="print JSON")
    replay = sub.add_parser("replay", help="deliver an output's jobs again (dead-lettered ones by default)")
    _common(replay)
    replay.add_argument("--workspace", help=WORKSPACE_HELP)
    replay.add_argument("--output", required=True, help="output id")
    replay.add_argument("--since", required=True, help="unix ms, ISO-8601 time, or a duration back (6h, 2d)")
    replay.add_argument("--until", help="only jobs created before: the same forms (default: now)")
    replay.add_argument("--status", choices=("dead", "all"), default="dead",
                        help="dead-lettered jobs only (default) or every job")
    replay.add_argument("--no-wait", action="store_true", help="queue and return; do not show progress")
    replay.add_argument("--timeout", type=float, default=600, help="seconds to wait for the queue to drain")
    log = sub.add_parser("log", help="the ingest log")
    lsub = log.add_subparsers(dest="action", required=True)
    _common(lsub.add_parser("accept-epoch", help="accept a replaced log file: renumber its entries after what "
                                                 "was processed, so they are processed (kaon serve stopped)"))
    status = sub.add_parser("status", help="the processes of this Kaon and how far processing has read the log")
    _common(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    migrate = sub.add_parser("migrate", help="bring the data store to the newest schema (serve and init do it too)")
    _common(migrate)
    migrate.add_argument("--check", action="store_true",
                         help="only report the store's schema version; exit 1 when it is not the newest")
    migrate.add_argument("--json", action="store_true", help="print one JSON object")
    quarantine = sub.add_parser("quarantine", help="list data a plan blocked, or run it through processing again")
    qsub = quarantine.add_subparsers(dest="action", required=True)
    qlist = qsub.add_parser("list", help="list quarantined batches, newest first")
    qlist.add_argument("--limit", type=int, default=100, help="how many (default 100)")
    qreplay = qsub.add_parser("replay", help="re-run quarantined batches (after the plan is fixed)")
    qreplay.add_argument("ids", nargs="*", help="quarantine ids")
    qreplay.add_argument("--all", action="store_true", help="every quarantined batch of the workspace")
    for leaf in (qlist, qreplay):
        _common(leaf)
        leaf.add_argument("--workspace", help=WORKSPACE_HELP)
        leaf.add_argument("--json", action="store_true", help="print JSON")
    for command, what in (("audiences", "audiences"), ("calculated", "calculated attributes")):
        parser_ = sub.add_parser(command, help=f"{what}: list, activate (backfill with progress), status"
                                 + (", connections" if command == "audiences" else ""))
        asub = parser_.add_subparsers(dest="action", required=True)
        alist = asub.add_parser("list", help=f"list {what} with their status")
        aactivate = asub.add_parser("activate", help="activate: backfill from the stored history, with a progress bar")
        aactivate.add_argument("id")
        aactivate.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the backfill")
        astatus = asub.add_parser("status", help="status and backfill progress as JSON")
        astatus.add_argument("id")
        leaves = [alist, aactivate, astatus]
        if command == "audiences":
            aconnections = asub.add_parser("connections", help="list an audience's connections to outputs")
            aconnections.add_argument("id", help="the audience")
            aconnect = asub.add_parser("connect", help="connect an audience to an output (sync or trigger); an "
                                                       "audience output gets the current members, then every change")
            aconnect.add_argument("id", help="the audience")
            aconnect.add_argument("output_id", help="the output")
            aconnect.add_argument("--settings", default="{}",
                                  help="the connection's settings as JSON (mode, identity_types, rules, output)")
            adisconnect = asub.add_parser("disconnect", help="disconnect: an audience output gets a removal of every "
                                                             "member it was sent")
            adisconnect.add_argument("id", help="the audience")
            adisconnect.add_argument("connection_id")
            leaves += [aconnections, aconnect, adisconnect]
        for leaf in leaves:
            _common(leaf)
            leaf.add_argument("--workspace", help=WORKSPACE_HELP)
            leaf.add_argument("--json", action="store_true", help="print JSON")
    dsr = sub.add_parser("dsr", help="data subject requests (OpenDSR): submit one, show its status")
    _common(dsr)
    dsr.add_argument("--workspace", help=WORKSPACE_HELP)
    dsub = dsr.add_subparsers(dest="action", required=True)
    submit = dsub.add_parser("submit", help="queue a request (a running `kaon serve` processes it)")
    submit.add_argument("--type", required=True, choices=("erasure", "access", "portability"))
    submit.add_argument("--email", help="the person's email")
    submit.add_argument("--customer-id", help="the person's customer id")
    submit.add_argument("--mpid", help="the person's mpid (must be the only identity)")
    submit.add_argument("--regulation", choices=("gdpr", "ccpa"), default="gdpr")
    submit.add_argument("--id", help="subject_request_id, a UUID (default: a new one)")
    submit.add_argument("--skip-waiting-period", action="store_true",
                        help="erase without the waiting period ($KAON_DSR_WAITING_DAYS, default 0)")
    status = dsub.add_parser("status", help="a request's OpenDSR status as JSON")
    status.add_argument("request_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.resolve(args.data_dir, args.database_url, getattr(args, "host", None),
                                    getattr(args, "port", None), getattr(args, "process_stage", None),
                                    getattr(args, "access_log", None), getattr(args, "role", None))
        os.umask(files.UMASK)  # databases, logs and keys are private to the user running Kaon
        if args.command in ("init", "serve"):
            files.secure(settings.data_dir)
        if args.command == "init":
            from kaon.commands.init import run_init

            return run_init(settings, args.workspace, "json" if args.json else "shell" if args.shell else "text")
        if args.command == "serve":
            from kaon.server import serve

            serve(settings)
            return 0
        if args.command == "quarantine":
            from kaon.commands.quarantine import run_quarantine

            return run_quarantine(settings, args)
        if args.command == "status":
            from kaon.commands.status import run_status

            return run_status(settings, args)
        if args.command == "migrate":
            from kaon.commands.migrate import run_migrate

            return run_migrate(settings, args)
        if args.command == "log":
            from kaon.commands.log import run_log

            return run_log(settings, args)
        if args.command == "dsr":
            from kaon.commands.dsr import run_dsr

            return run_dsr(settings, args)
        if args.command == "replay":
            from kaon.commands.replay import run_replay

            return run_replay(settings, args)
        if args.command in ("audiences", "calculated"):
            from kaon.commands.audiences import run_audiences

            return run_audiences(settings, args)
        if args.command == "tokens":
            from kaon.commands.tokens import run_tokens

            return run_tokens(settings, args)
        from kaon.commands.inputs import run_inputs

        return run_inputs(settings, args)
    except (KaonError, ValueError) as error:
        print(json.dumps({"error": str(error)}) if getattr(args, "json", False) else f"kaon: {error}",
              file=sys.stderr)
        return 2
