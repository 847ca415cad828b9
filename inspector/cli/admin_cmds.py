"""Admin commands: ``inspector user add|list|role|revoke|recover``, ``inspector model add``, ``inspector recipe
add``.

While the station's database has no user (a fresh install), whoever has a shell on the station acts
as its administrator, as the audit log records; once users exist, these commands need ``--user`` and
that user's password (asked for, or read from INSPECTOR_PASSWORD for scripts). The repositories check
the role again from the users table and audit each change in the same transaction.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from inspector.cli.signin import ask_secret, db_user, open_sessions, signed_in
from inspector.core.auth import Role
from inspector.core.errors import ConfigError


def _user_add(a: argparse.Namespace) -> int:
    from db.accounts import add_user, has_users

    engine, sessions = open_sessions(a)
    try:
        with sessions.begin() as s:
            first = not has_users(s)
        actor = None if first else signed_in(a, sessions, "users")
        password = ask_secret(f"new password for {a.name}: ", "INSPECTOR_NEW_PASSWORD")
        try:
            u, code = add_user(sessions, actor, a.name, a.role, password, f"Adding the user {a.name}")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        print(f"user {u.name} added with role {u.role}")
        if code:
            _show_code(u.name, code)
        return 0
    finally:
        engine.dispose()


def _show_code(name: str, code: str) -> None:
    print(f"recovery code for {name}: {code}\n  shown once: keep it offline. If {name} is locked out or forgets the "
          f"password, 'inspector user recover {name}' takes it (once) and gives a new one.")


def _user_list(a: argparse.Namespace) -> int:
    from db import UserRepo

    engine, sessions = open_sessions(a)
    try:
        with sessions() as s:
            for u in UserRepo.list(s):
                print(f"{u.name:<20} {u.role:<9} {'locked' if u.locked() else ''}")
        return 0
    finally:
        engine.dispose()


def _user_role(a: argparse.Namespace) -> int:
    from db import UserRepo
    from db.writes import write

    engine, sessions = open_sessions(a)
    try:
        actor = signed_in(a, sessions, "users")
        try:
            u = write(sessions, lambda s: UserRepo.set_role(s, actor, a.name, a.role), f"Changing {a.name}'s role")
        except (ValueError, LookupError) as e:
            raise ConfigError(str(e)) from None
        print(f"user {u.name} is now {u.role}")
        return 0
    finally:
        engine.dispose()


def _user_revoke(a: argparse.Namespace) -> int:
    from db import UserRepo
    from db.writes import write

    engine, sessions = open_sessions(a)
    try:
        actor = signed_in(a, sessions, "users")
        try:
            write(sessions, lambda s: UserRepo.revoke(s, actor, a.name), f"Ending {a.name}'s sessions")
        except LookupError as e:
            raise ConfigError(str(e)) from None
        print(f"every session of {a.name} is ended: their next protected change asks them to sign in again")
        return 0
    finally:
        engine.dispose()


def _user_recover(a: argparse.Namespace) -> int:
    from db.accounts import recover

    engine, sessions = open_sessions(a)
    try:
        code = ask_secret(f"recovery code for {a.name}: ", "INSPECTOR_RECOVERY_CODE")
        password = ask_secret(f"new password for {a.name}: ", "INSPECTOR_NEW_PASSWORD")
        try:
            new_code = recover(sessions, a.name, code.strip(), password)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        print(f"{a.name}: password reset and lock cleared (recorded in the audit log); the old code no longer works")
        _show_code(a.name, new_code)
        return 0
    finally:
        engine.dispose()


def _model_add(a: argparse.Namespace) -> int:
    from db import TrustRepo
    from db.writes import write
    from inspector.detection.registry import sha256_file

    path = Path(a.file)
    if not path.is_file():
        raise ConfigError(f"model file not found: {path}")
    engine, sessions = open_sessions(a)
    try:
        actor = signed_in(a, sessions, "model")
        h = sha256_file(path)
        card = path.parent / "card.json"  # its image size and provenance are trusted with the model
        card_h = sha256_file(card) if card.is_file() else None

        def trust(s) -> bool:  # noqa: ANN001
            added = TrustRepo.add(s, actor, "model", h, path.name, {"file": str(path.resolve())})
            if card_h:
                TrustRepo.add(s, actor, "model", card_h, f"{path.name} card.json",
                              {"file": str(card.resolve()), "card_of": h})
            return added
        new = write(sessions, trust, "Trusting the model")
        print(f"{'trusted' if new else 'already trusted:'} {path} (sha256 {h}) on this station's database")
        if card_h:
            print(f"and its card {card} (sha256 {card_h})")
        return 0
    finally:
        engine.dispose()


def _settings_approve(a: argparse.Namespace) -> int:
    from db.repositories.settings import SettingsRepo
    from db.writes import write
    from inspector.core.config import load_config
    from inspector.core.day import product_config
    from inspector.core.guarded import section_hashes

    cfg = product_config(load_config(a.config), a.product)
    engine, sessions = open_sessions(a)
    try:
        who = signed_in(a, sessions, "settings")
        changed = write(sessions, lambda s: SettingsRepo.approve(s, who, cfg.station_name, section_hashes(cfg)),
                        "Approving the settings")
    finally:
        engine.dispose()
    print(f"approved the settings of station {cfg.station_name}: {', '.join(changed) or 'nothing'} changed")
    return 0


def _recipe_add(a: argparse.Namespace) -> int:
    from db import TrustRepo
    from db.writes import write
    from inspector.core.config import load_recipe
    from inspector.detection.registry import recipe_sha256

    if bool(a.file) == bool(a.product):
        raise ConfigError("name a recipe FILE or a --product of the configuration (not both).")
    if a.product:  # a product defined in the configuration: its recipe as the station would judge with it
        from inspector.core.config import load_config
        from inspector.core.day import product_config

        cfg = load_config(a.config)
        if a.product not in cfg.products:
            known = ", ".join(sorted(cfg.products)) or "none"
            raise ConfigError(f"the configuration defines no product {a.product!r} (it defines: {known}).")
        recipe = product_config(cfg, a.product).recipe
        source = {"product": a.product, "config": str(a.config or "(default)")}
    else:
        recipe = load_recipe(a.file)
        source = {"file": str(Path(a.file).resolve())}
    h = recipe_sha256(recipe.model_dump(mode="json"))
    engine, sessions = open_sessions(a)
    try:
        actor = signed_in(a, sessions, "recipe")
        new = write(sessions, lambda s: TrustRepo.add(s, actor, "recipe", h, recipe.name,
                                                      {**source, "values": recipe.model_dump(mode="json")}),
                    "Registering the recipe")
        print(f"{'registered' if new else 'already registered:'} recipe {recipe.name!r} (sha256 {h}) on this "
              "station's database")
        return 0
    finally:
        engine.dispose()


def register(sub) -> None:
    u = sub.add_parser("user", help="local users and roles")
    usub = u.add_subparsers(dest="user_command", required=True)
    ua = usub.add_parser("add", help="add a user (the first one must be an admin, and gets a recovery code)")
    ua.add_argument("name")
    ua.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
    db_user(ua, "admin")
    ua.set_defaults(func=_user_add)
    ul = usub.add_parser("list", help="list users")
    ul.add_argument("--db", default=None)
    ul.set_defaults(func=_user_list)
    ur = usub.add_parser("role", help="change a user's role (admin)")
    ur.add_argument("name")
    ur.add_argument("role", choices=[r.value for r in Role])
    db_user(ur, "admin")
    ur.set_defaults(func=_user_role)
    uv = usub.add_parser("revoke", help="end every session of a user (admin): signed in anywhere, they must sign in "
                         "again")
    uv.add_argument("name")
    db_user(uv, "admin")
    uv.set_defaults(func=_user_revoke)
    uc = usub.add_parser("recover", help="reset a locked-out user's password with their one-time recovery code "
                         "(INSPECTOR_RECOVERY_CODE, INSPECTOR_NEW_PASSWORD, or asked for)")
    uc.add_argument("name")
    uc.add_argument("--db", default=None)
    uc.set_defaults(func=_user_recover)

    m = sub.add_parser("model", help="trusted model files")
    msub = m.add_subparsers(dest="model_command", required=True)
    ma = msub.add_parser("add", help="trust a model file on this station: its SHA-256 goes into the database, "
                         "audited (admin)")
    ma.add_argument("file")
    db_user(ma, "admin")
    ma.set_defaults(func=_model_add)
    from inspector.cli import promote_cmds

    promote_cmds.register(msub, db_user)

    st = sub.add_parser("settings", help="approved settings (issue 24)")
    stsub = st.add_subparsers(dest="settings_command", required=True)
    sa = stsub.add_parser("approve", help="approve the configuration's quality, storage, station, alarms, shadow and "
                          "line settings for the next runs of this station, audited (admin)")
    sa.add_argument("--config", default=None, help="the station's configuration file")
    sa.add_argument("--product", default=None, help="a product of the configuration ([products.NAME])")
    db_user(sa, "admin")
    sa.set_defaults(func=_settings_approve)

    r = sub.add_parser("recipe", help="registered recipes")
    rsub = r.add_subparsers(dest="recipe_command", required=True)
    ra = rsub.add_parser("add", help="register a recipe file, or a product's recipe from the configuration, on this "
                         "station: its SHA-256 and author go into the audit trail (QC or admin)")
    ra.add_argument("file", nargs="?", default=None, help="a recipe TOML file")
    ra.add_argument("--product", default=None, help="a product of the configuration ([products.NAME])")
    ra.add_argument("--config", default=None, help="the station's configuration (for --product)")
    db_user(ra, "QC or admin")
    ra.set_defaults(func=_recipe_add)
