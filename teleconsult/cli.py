"""The `teleconsult` command: serve | media-node | recover | demo | migrate | user add |
institution add/list | token."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiohttp.http_exceptions import HttpProcessingError

from media.recovery import recover_dead_writers
from media.storage import LocalRecordingStorage, UnsafeStorageKey, safe_name
from media.writer_folders import FolderInUse, is_alive
from rooms.calls.recording_service import RecordingService
from rooms.consults.institutions import InstitutionLevel
from rooms.consults.people import Role, Specialty
from rooms.consults.service import ConsultService, utc_now
from rooms.training.service import TrainingService
from signaling.passwords import hash_password
from storage.sql.migrate import upgrade
from storage.sql.repositories import SqlRepositories
from teleconsult import __version__
from teleconsult.bootstrap import build_repositories, build_tokens, serve
from teleconsult.config import ConfigError, Settings, load_settings
from teleconsult.demo import USERS, demo_links, demo_training_links, ensure_roster, seed
from teleconsult.logs import configure_logging
from teleconsult.media_node import serve_media_node
from teleconsult.user_changes import tell_servers_user_changed


def _with_store(settings: Settings, work: Callable[[SqlRepositories], Awaitable[int]]) -> int:
    async def run() -> int:
        repos = build_repositories(settings)
        try:
            return await work(repos)
        finally:
            await repos.close()

    return asyncio.run(run())


def migrate(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    migrate(settings)
    try:
        serve(settings)
    except FolderInUse as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_media_node(settings: Settings, _args: argparse.Namespace) -> int:
    if not settings.redis_url:
        print(
            "configuration error: teleconsult media-node needs REDIS_URL (signaling finds "
            "media nodes through Redis)",
            file=sys.stderr,
        )
        return 2
    migrate(settings)
    try:
        return serve_media_node(settings)
    except FolderInUse as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


def cmd_recover(settings: Settings, args: argparse.Namespace) -> int:
    """Finalize the partial recordings of dead writers (all, or `--node`'s)."""
    node: str | None = args.node
    if node is not None:
        try:
            safe_name(node)
        except UnsafeStorageKey as exc:
            print(f"invalid --node: {exc.reason}", file=sys.stderr)
            return 2
    migrate(settings)
    storage = LocalRecordingStorage(settings.recordings_dir)
    if node is not None and is_alive(storage.partial_dir, node):
        print(f"media node {node} is running; its files are left alone", file=sys.stderr)
        return 1
    if node is not None and not (storage.partial_dir / node).is_dir():
        print(f"no partial recordings of {node} in {storage.partial_dir}")
        return 0

    async def work(repos: SqlRepositories) -> int:
        ledger = RecordingService(repos.consults, repos.recordings, utc_now)
        done = await recover_dead_writers(storage.partial_dir, storage, ledger, only=node)
        for rec in done:
            print(f"recovered {rec.id} of consult {rec.consult_id} ({rec.duration_s:.1f} s)")
        print(f"recovered {len(done)} unfinished recording(s)")
        return 0

    return _with_store(settings, work)


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    migrate(settings)
    print(f"database schema is up to date ({settings.database_url})")
    return 0


def cmd_demo(settings: Settings, _args: argparse.Namespace) -> int:
    migrate(settings)

    async def work(repos: SqlRepositories) -> int:
        seeded = await seed(repos.consults)
        await ensure_roster(repos.consults, repos.duty, datetime.now(UTC))
        links = await demo_links(settings, ConsultService(repos.consults), build_tokens(settings))
        print(
            "Demo data "
            + ("created" if seeded else "already present")
            + f" in {settings.database_url}"
        )
        print("Demo users (demo only; password = demo-<username>):")
        for u in USERS:
            print(f"  {u.username:<14} {u.password:<20} {u.role.value:<17} {u.display_name}")
        ttl = int(settings.join_link_ttl.total_seconds() // 60)
        print(f"One-click join links for consult {links.consult_id} (valid {ttl} minutes):")
        print(f"EXAM_ROOM_URL={links.exam_room_url}")
        print(f"SPECIALIST_URL={links.specialist_url}", flush=True)
        training = await demo_training_links(
            settings, TrainingService(repos.consults, repos.trainings), build_tokens(settings)
        )
        print(f"One-click links for training {training.training_id} (valid {ttl} minutes):")
        print(f"TRAINING_LECTURER_URL={training.lecturer_url}")
        print(f"TRAINING_VIEWER_URL={training.viewer_url}", flush=True)
        return 0

    return _with_store(settings, work)


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass()
    if len(password) < 8:
        print("error: the password must have at least 8 characters", file=sys.stderr)
        return 2
    migrate(settings)

    async def work(repos: SqlRepositories) -> int:
        store = repos.consults
        if args.institution_id not in {i.id for i in await store.institutions()}:
            print(f"error: no institution {args.institution_id}", file=sys.stderr)
            return 2
        if await store.credentials(args.username) is not None:
            print(f"error: user {args.username!r} exists already", file=sys.stderr)
            return 2
        user = await store.add_user(
            args.username,
            args.display_name or args.username,
            Role(args.role),
            args.institution_id,
            Specialty(args.specialty) if args.specialty else None,
            hash_password(password),
        )
        print(f"user {user.username} added with id {user.id}")
        return 0

    return _with_store(settings, work)


def cmd_user_active(settings: Settings, args: argparse.Namespace) -> int:
    """`user disable` / `user enable`: a disabled user can no longer sign in nor use a token
    they hold (the running servers drop the user from their `KnownUsers` at once: the change
    stamp in DATA_DIR and, with REDIS_URL, a notice on `USERS_CHANNEL`), and their open
    connections are ended within SOCKET_RECHECK_SECONDS by the running server."""
    active = args.action == "enable"
    migrate(settings)

    async def work(repos: SqlRepositories) -> int:
        store = repos.consults
        found = await store.credentials(args.username)
        if found is None:
            print(f"error: no user {args.username!r}", file=sys.stderr)
            return 2
        await store.set_user_active(found[0].id, active)
        await tell_servers_user_changed(settings, found[0].id)
        print(f"user {args.username} {'enabled' if active else 'disabled'}")
        return 0

    return _with_store(settings, work)


def cmd_institution_add(settings: Settings, args: argparse.Namespace) -> int:
    migrate(settings)

    async def work(repos: SqlRepositories) -> int:
        store = repos.consults
        inst = await store.add_institution(args.name, InstitutionLevel(args.level), args.parent_id)
        print(f"institution {inst.name} added with id {inst.id}")
        return 0

    return _with_store(settings, work)


def cmd_institution_list(settings: Settings, _args: argparse.Namespace) -> int:
    async def work(repos: SqlRepositories) -> int:
        store = repos.consults
        for inst in await store.institutions():
            print(f"{inst.id:>4}  {inst.level.value:<9} parent={inst.parent_id}  {inst.name}")
        return 0

    return _with_store(settings, work)


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    async def work(repos: SqlRepositories) -> int:
        store = repos.consults
        found = await store.credentials(args.username)
        if found is None:
            print(f"error: no user {args.username!r}", file=sys.stderr)
            return 2
        user = found[0]
        if args.role and Role(args.role) is not user.role:
            print(
                f"error: {user.username} is a {user.role.value}, not a {args.role}", file=sys.stderr
            )
            return 2
        ttl = timedelta(seconds=args.ttl_seconds) if args.ttl_seconds else None
        token, _ = build_tokens(settings).issue(user, ttl=ttl)
        print(token)
        return 0

    return _with_store(settings, work)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="teleconsult", description=__doc__)
    p.add_argument("--version", action="version", version=f"teleconsult {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve", help="run the server (HOST, PORT, DATA_DIR, … from the environment)"
    ).set_defaults(run=cmd_serve)
    sub.add_parser(
        "demo", help="seed demo data into an empty database and print join links"
    ).set_defaults(run=cmd_demo)
    sub.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        run=cmd_migrate
    )
    sub.add_parser(
        "media-node",
        help="run a media node (relay + recorder) for signaling processes with MEDIA_NODES=redis",
    ).set_defaults(run=cmd_media_node)
    rec = sub.add_parser(
        "recover",
        help="finalize the partial recordings of dead media nodes and servers (live ones are "
        "left alone)",
    )
    rec.add_argument("--node", help="only this writer's files (its MEDIA_NODE_ID)")
    rec.set_defaults(run=cmd_recover)

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add a user (password read from the terminal)")
    add.add_argument("--username", required=True)
    add.add_argument("--display-name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--institution-id", required=True, type=int)
    add.add_argument("--specialty", choices=[s.value for s in Specialty])
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )
    add.set_defaults(run=cmd_user_add)
    for action, text in (
        ("disable", "disable a user: no sign-in, open connections ended"),
        ("enable", "enable a disabled user again"),
    ):
        toggle = user.add_parser(action, help=text)
        toggle.add_argument("--username", required=True)
        toggle.set_defaults(run=cmd_user_active)

    inst = sub.add_parser("institution", help="manage institutions").add_subparsers(
        dest="action", required=True
    )
    iadd = inst.add_parser("add", help="add an institution")
    iadd.add_argument("--name", required=True)
    iadd.add_argument("--level", required=True, choices=[lv.value for lv in InstitutionLevel])
    iadd.add_argument("--parent-id", type=int)
    iadd.set_defaults(run=cmd_institution_add)
    inst.add_parser("list", help="list institutions").set_defaults(run=cmd_institution_list)

    tok = sub.add_parser("token", help="mint a JWT for a user, for integrations and tests")
    tok.add_argument("--username", required=True)
    tok.add_argument(
        "--role", choices=[r.value for r in Role], help="refuse unless the user has this role"
    )
    tok.add_argument("--ttl-seconds", type=int)
    tok.set_defaults(run=cmd_token)
    return p


def quiet_parser_rejections(record: logging.LogRecord) -> bool:
    """A request aiohttp's HTTP parser refuses (answered 400 before the app, docs/protocol.md)
    is logged as one WARNING line, not an ERROR with a traceback: anyone can send them, so a
    traceback each would let an unauthenticated client flood the log."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, HttpProcessingError):
        record.msg = f"{record.getMessage()}: {type(exc).__name__} {exc.code} {exc.message}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration is noise
    logging.getLogger("aiohttp.server").addFilter(quiet_parser_rejections)
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if settings.log_format != "text":
        configure_logging(settings.log_format)  # LOG_FORMAT=json
    result: int = args.run(settings, args)
    return result
