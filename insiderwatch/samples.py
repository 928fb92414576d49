"""A synthetic organisation's logs, in the exact landing contract, with injected incidents.

The organisation has departments, roles and supervisors; people keep their own hours; there are
night-shift operators, IT admins who move a lot of data, sales staff who mail attachments out,
travellers who log on remotely, weekends and Japanese public holidays, benign leavers, and
incidents of seven kinds. The incidents are listed in ``labels.csv`` (user, scenario, date), which
only ``insiderwatch evaluate`` may read.

Everything is drawn from one seeded ``numpy`` generator, so a seed always gives the same files.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from insiderwatch.calendar import is_workday
from insiderwatch.config import load_config
from schemas.canonical import SOURCES

DOMAIN = "kaisei-mfg.co.jp"
CUSTOMER_DOMAINS = (
    "toyoda-parts.co.jp",
    "nishiden.co.jp",
    "sakura-motors.com",
    "global-auto.com",
    "hokuriku-denki.co.jp",
)
COMPETITOR_DOMAINS = ("rival-semicon.com", "tairyo-tech.co.jp")
CODE_NAMES = ("SAKURA", "HAYABUSA", "オリオン", "TSUBAKI")
BUSINESS_SITES = (
    "www.nikkei.com",
    "www.meti.go.jp",
    "www.jpo.go.jp",
    "support.microsoft.com",
    "www.digikey.jp",
    "www.misumi-ec.com",
    "stackoverflow.com",
    "github.com",
    "www.yahoo.co.jp",
    "news.yahoo.co.jp",
    "weather.yahoo.co.jp",
)
SANCTIONED_CLOUD = "kaisei.sharepoint.com"

# department key, Japanese name, English share name, systems, roles with weights
DEPARTMENTS = (
    (
        "rnd",
        "研究開発部",
        "rnd",
        ("plm", "lab-lims", "cad-vault"),
        (("engineer", 0.85), ("researcher", 0.15)),
    ),
    ("design", "設計部", "design", ("cad-vault", "plm"), (("engineer", 1.0),)),
    ("mfg", "製造部", "mfg", ("mes", "recipe-db"), (("operator", 0.6), ("engineer", 0.4))),
    ("qa", "品質保証部", "qa", ("qms", "lab-lims"), (("inspector", 1.0),)),
    ("sales", "営業部", "sales", ("crm", "quote"), (("sales", 1.0),)),
    ("it", "情報システム部", "it", ("ad", "backup", "itsm"), (("admin", 1.0),)),
    ("finance", "経理部", "finance", ("erp-fi",), (("accountant", 1.0),)),
    ("hr", "人事部", "hr", ("hris",), (("hr_staff", 1.0),)),
)
DEPT_WEIGHTS = np.array([0.2, 0.14, 0.2, 0.1, 0.14, 0.08, 0.07, 0.07])

SURNAMES = (
    ("山田", "yamada"),
    ("佐藤", "sato"),
    ("鈴木", "suzuki"),
    ("高橋", "takahashi"),
    ("田中", "tanaka"),
    ("伊藤", "ito"),
    ("渡辺", "watanabe"),
    ("中村", "nakamura"),
    ("小林", "kobayashi"),
    ("加藤", "kato"),
    ("吉田", "yoshida"),
    ("山本", "yamamoto"),
    ("松本", "matsumoto"),
    ("井上", "inoue"),
    ("木村", "kimura"),
    ("林", "hayashi"),
    ("清水", "shimizu"),
    ("森", "mori"),
    ("池田", "ikeda"),
    ("橋本", "hashimoto"),
)
GIVEN = (
    ("太郎", "taro"),
    ("花子", "hanako"),
    ("健", "ken"),
    ("美咲", "misaki"),
    ("翔", "sho"),
    ("陽菜", "hina"),
    ("大輔", "daisuke"),
    ("彩", "aya"),
    ("誠", "makoto"),
    ("由美", "yumi"),
    ("拓也", "takuya"),
    ("恵", "megumi"),
    ("直樹", "naoki"),
    ("さくら", "sakura"),
    ("悠", "yu"),
    ("真理", "mari"),
)
LATIN = (
    ("Emily Carter", "emily.carter"),
    ("Daniel Kim", "daniel.kim"),
    ("Priya Nair", "priya.nair"),
    ("Lucas Meyer", "lucas.meyer"),
    ("Chen Wei", "chen.wei"),
    ("Anna Rossi", "anna.rossi"),
)
FREE_MAIL = ("gmail.com", "yahoo.co.jp", "outlook.com", "icloud.com", "docomo.ne.jp")

SUBJECTS_INTERNAL = (
    "打合せの件",
    "週報",
    "Re: 日程調整",
    "議事録送付",
    "Weekly sync notes",
    "資料共有",
    "確認のお願い",
    "Re: 予算について",
    "社内報",
    "Review request",
)
SUBJECTS_EXTERNAL = (
    "見積書送付の件",
    "Re: ご提案資料",
    "納期のご連絡",
    "Quotation attached",
    "Meeting follow-up",
    "仕様確認のお願い",
    "Invoice",
    "ご挨拶",
)
SUBJECTS_RECRUIT = (
    "【ハイクラス求人】あなたにスカウトが届いています",
    "Exciting opportunity",
    "ご経験を活かせるポジションのご紹介",
    "Spot consultation request (1 hour, paid)",
    "業界動向についてお話を伺えませんか",
)
RECRUITERS = (
    "scout@bizreach.jp",
    "talent@linkedin.com",
    "noreply@doda.jp",
    "expert@visasq.co.jp",
    "network@glginsights.com",
    "recruit@jac-recruitment.jp",
)
DOC_WORDS = (
    "report",
    "minutes",
    "budget",
    "spec",
    "drawing",
    "test_result",
    "plan",
    "proposal",
    "schedule",
    "manual",
    "design_review",
    "bom",
)
DOC_EXT = (".docx", ".xlsx", ".pptx", ".pdf", ".dwg", ".step", ".csv")
SCENARIOS = (
    "leaver_theft",
    "usb_after_hours",
    "self_forward_codenames",
    "cross_dept_top_secret",
    "late_night_cloud",
    "slow_theft",
    "first_time_usb_leak",
)
LEAK_SITES = ("https://wikileaks.org/submit", "https://gofile.io/upload", "https://pastebin.com/")


@dataclass
class Person:
    idx: int
    user: str
    name: str
    email: str
    dept: int
    role: str
    supervisor: str
    hire_date: date
    start_hour: float
    hours: float
    night_shift: bool = False
    traveller: bool = False
    priority: bool = False
    personal_email: str = ""
    notice_date: date | None = None
    last_day: date | None = None
    usb_user: bool = False

    @property
    def dept_key(self) -> str:
        return DEPARTMENTS[self.dept][0]

    @property
    def department(self) -> str:
        return DEPARTMENTS[self.dept][1]


@dataclass
class Incident:
    user: int
    scenario: str
    days: list[date]


@dataclass
class Org:
    people: list[Person]
    incidents: list[Incident] = field(default_factory=list)


class _Events:
    """Rows per source, collected as column lists and bucketed by local day at the end."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, object]]] = defaultdict(list)

    def add(self, source: str, when: datetime, **values: object) -> None:
        self.rows[source].append({"timestamp": when, **values})


def _people(rng: np.random.Generator, users: int, start: date) -> list[Person]:
    depts = rng.choice(len(DEPARTMENTS), size=users, p=DEPT_WEIGHTS / DEPT_WEIGHTS.sum())
    depts[0] = 0  # the director sits in R&D
    people: list[Person] = []
    for i in range(users):
        dept = int(depts[i])
        roles = DEPARTMENTS[dept][4]
        role = str(rng.choice([r for r, _ in roles], p=[w for _, w in roles]))
        if i % 23 == 5:
            name, romaji = LATIN[i % len(LATIN)]
        else:
            sur = SURNAMES[int(rng.integers(len(SURNAMES)))]
            giv = GIVEN[int(rng.integers(len(GIVEN)))]
            name, romaji = f"{sur[0]} {giv[0]}", f"{giv[1]}.{sur[1]}"
        user = f"u{i + 1:05d}"
        hire = start - timedelta(days=int(rng.integers(200, 7000)))
        person = Person(
            idx=i,
            user=user,
            name=name,
            email=f"{romaji}{i + 1}@{DOMAIN}",
            dept=dept,
            role=role,
            supervisor="",
            hire_date=hire,
            start_hour=float(np.clip(rng.normal(8.8, 0.5), 7.5, 10.0)),
            hours=float(np.clip(rng.normal(9.2, 0.6), 8.0, 11.0)),
            personal_email=f"{romaji.replace('.', '_')}{int(rng.integers(10, 99))}@"
            f"{FREE_MAIL[int(rng.integers(len(FREE_MAIL)))]}",
        )
        person.night_shift = role == "operator" and rng.random() < 0.5
        person.traveller = role == "sales" or rng.random() < 0.05
        person.usb_user = role in ("admin", "inspector") or rng.random() < 0.08
        people.append(person)
    people[0].role = "director"
    # Managers: one per department (first member), teams of about eight under team leads.
    by_dept: dict[int, list[Person]] = defaultdict(list)
    for p in people[1:]:
        by_dept[p.dept].append(p)
    for members in by_dept.values():
        head = members[0]
        head.role = "manager"
        head.supervisor = people[0].user
        head.night_shift = False
        head.priority = head.dept in (0, 1, 2)
        for k, p in enumerate(members[1:]):
            lead = members[1 + (k // 8) * 8]
            p.supervisor = head.user if p is lead else lead.user
            if p is lead and p.role != "operator":
                p.role = f"{p.role}_lead" if not p.role.endswith("_lead") else p.role
    # A few engineers know a whole process (METI item 13).
    for p in people:
        if p.role in ("engineer_lead", "researcher") and rng.random() < 0.5:
            p.priority = True
    return people


def _pick(
    rng: np.random.Generator,
    people: list[Person],
    taken: set[int],
    depts: tuple[int, ...],
    roles: tuple[str, ...] = ("engineer", "researcher", "operator", "inspector"),
) -> Person:
    pool = [
        p
        for p in people
        if p.idx not in taken and p.dept in depts and p.role in roles and not p.night_shift
    ]
    if not pool:
        pool = [p for p in people if p.idx not in taken and p.idx != 0]
    person = pool[int(rng.integers(len(pool)))]
    taken.add(person.idx)
    return person


def _workdays(days: list[date], site) -> list[date]:
    return [d for d in days if is_workday(d, site)]


def _plan_incidents(rng: np.random.Generator, org: Org, days: list[date], site) -> None:
    work = _workdays(days, site)
    n = len(work)
    taken: set[int] = {0}
    late = work[n // 3 :]

    def window(length: int, pool: list[date]) -> list[date]:
        first = int(rng.integers(0, max(1, len(pool) - length)))
        return pool[first : first + length]

    # Malicious leaver: theft in the weeks around notice, leaves before the period ends.
    thief = _pick(rng, org.people, taken, (0, 1))
    notice_at = int(n * 0.6)
    thief.notice_date = work[notice_at]
    thief.last_day = work[min(n - 1, notice_at + 15)]
    theft_days = sorted(
        set(rng.choice(work[notice_at - 10 : notice_at], 3, replace=False))
        | set(work[notice_at + 2 : notice_at + 12 : 3])
    )
    org.incidents.append(Incident(thief.idx, "leaver_theft", theft_days))

    usb = _pick(rng, org.people, taken, (0, 1, 2, 3))
    org.incidents.append(
        Incident(usb.idx, "usb_after_hours", sorted(rng.choice(window(12, late), 3, replace=False)))
    )

    fwd = _pick(rng, org.people, taken, (0, 1))
    org.incidents.append(
        Incident(
            fwd.idx,
            "self_forward_codenames",
            sorted(rng.choice(window(10, late), 3, replace=False)),
        )
    )

    cross = _pick(rng, org.people, taken, (2, 3), ("engineer", "inspector", "operator"))
    org.incidents.append(
        Incident(
            cross.idx,
            "cross_dept_top_secret",
            sorted(rng.choice(window(8, late), 2, replace=False)),
        )
    )

    night = _pick(rng, org.people, taken, (0, 1, 2))
    org.incidents.append(
        Incident(
            night.idx, "late_night_cloud", sorted(rng.choice(window(10, late), 2, replace=False))
        )
    )

    slow = _pick(rng, org.people, taken, (0, 1, 2))
    slow_days = window(min(35, len(late)), late)[::3]
    org.incidents.append(Incident(slow.idx, "slow_theft", slow_days))

    # CERT r4.2 scenario 1: someone who never used removable media and never worked late
    # starts logging on after hours, plugging in a thumb drive and going to a leak site, and
    # leaves soon after (no notice on record, as in CERT; the last day is HR's).
    pool = [
        p
        for p in org.people
        if p.idx not in taken
        and not (p.usb_user or p.night_shift or p.traveller)
        and p.role not in ("director", "manager")
    ]
    if pool:
        first = pool[int(rng.integers(len(pool)))]
        taken.add(first.idx)
        span = window(10, late)
        first.last_day = work[min(n - 1, work.index(span[-1]) + 3)]
        days = sorted(rng.choice(span, 4, replace=False))
        org.incidents.append(Incident(first.idx, "first_time_usb_leak", days))

    # Benign leavers: notice within the period, nothing untoward.
    for _ in range(max(2, len(org.people) // 60)):
        leaver = _pick(
            rng,
            org.people,
            taken,
            tuple(range(len(DEPARTMENTS))),
            ("engineer", "sales", "accountant", "inspector", "hr_staff", "admin"),
        )
        at = int(rng.integers(n // 3, n - 5))
        leaver.notice_date = work[at]
        leaver.last_day = work[min(n - 1, at + int(rng.integers(10, 25)))]


def _at(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(seconds=int(hour * 3600))


def _doc(rng: np.random.Generator, dept_share: str, secret: bool = False) -> tuple[str, str]:
    word = DOC_WORDS[int(rng.integers(len(DOC_WORDS)))]
    ext = DOC_EXT[int(rng.integers(len(DOC_EXT)))]
    folder = "極秘" if secret else ("projects", "shared", "team", "archive")[int(rng.integers(4))]
    name = f"{word}_{int(rng.integers(1, 999)):03d}{ext}"
    level = (
        "極秘" if secret else ("社外秘", "社外秘", "internal", "public", "")[int(rng.integers(5))]
    )
    return f"\\\\fs01\\{dept_share}\\{folder}\\{name}", level


def _normal_day(
    rng: np.random.Generator,
    p: Person,
    day: date,
    ev: _Events,
    scale: float,
    workday: bool,
    people: list[Person],
) -> None:
    dept = DEPARTMENTS[p.dept]
    if p.night_shift:
        start = 21.5 + rng.normal(0, 0.2)
        length = 8.5 + rng.normal(0, 0.3)
    else:
        start = p.start_hour + rng.normal(0, 0.25)
        length = p.hours + rng.normal(0, 0.4)
    if not workday:
        length = float(rng.uniform(2, 5))
        start = float(rng.uniform(9, 13)) if not p.night_shift else start
    end = start + length
    host = f"PC-{p.user.upper()}"
    remote = p.traveller and rng.random() < 0.3
    ev.add(
        "logon",
        _at(day, start),
        user=p.user,
        host=host,
        activity="logon",
        remote="true" if remote else "false",
    )
    ev.add(
        "logon",
        _at(day, end),
        user=p.user,
        host=host,
        activity="logoff",
        remote="true" if remote else "false",
    )

    def times(k: int) -> np.ndarray:
        return np.sort(rng.uniform(start + 0.1, end - 0.1, size=k))

    n_files = rng.poisson(12 * scale * (1 if workday else 0.4))
    for t in times(n_files):
        path, level = _doc(rng, dept[2])
        action = ("open", "read", "read", "write", "copy", "download", "rename")[
            int(rng.integers(7))
        ]
        size = int(rng.lognormal(12, 1.2))
        dest = "share" if action in ("copy", "write") else "local"
        if p.role.startswith("admin") and rng.random() < 0.3:
            action, dest, size = "copy", "share", int(rng.lognormal(19, 1.0))
            path = f"\\\\fs01\\backup\\{day:%Y%m%d}\\image_{int(rng.integers(999))}.vhdx"
            level = ""
        system = dept[3][int(rng.integers(len(dept[3])))]
        if p.role.startswith("admin") and rng.random() < 0.5:
            other = DEPARTMENTS[int(rng.integers(len(DEPARTMENTS)))]
            system = other[3][0]
        ev.add(
            "file_access",
            _at(day, t),
            user=p.user,
            host=host,
            action=action,
            path=path,
            bytes=size,
            destination=dest,
            system=system,
            classification=level,
        )
    if p.usb_user and rng.random() < 0.15:
        t = float(rng.uniform(start + 0.5, end - 0.5))
        _usb(ev, p, host, day, t, "connect")
        _burst(
            rng,
            ev,
            p,
            host,
            day,
            dept[2],
            t + 0.01,
            0.01,
            int(rng.integers(1, 4)),
            ("copy",),
            (13, 1),
            0.0,
            destination="removable",
            system="",
            classification="",
        )
        _usb(ev, p, host, day, t + 0.2, "disconnect")
    for t in times(rng.poisson(0.8 * scale)):
        path, _ = _doc(rng, dept[2])
        pages = int(rng.integers(1, 15))
        ev.add(
            "print",
            _at(day, t),
            user=p.user,
            printer=f"PRN-{dept[2].upper()}-1",
            document=path.rsplit("\\", 1)[-1],
            pages=pages,
            copies=1,
            bytes=pages * 48_000,
        )
    colleagues = [q for q in people if q.dept == p.dept and q is not p] or people
    for t in times(rng.poisson(4 * scale)):
        external = p.role.startswith("sales") and rng.random() < 0.6
        if external:
            to = f"buyer{int(rng.integers(1, 40))}@{CUSTOMER_DOMAINS[int(rng.integers(5))]}"
            subject = SUBJECTS_EXTERNAL[int(rng.integers(len(SUBJECTS_EXTERNAL)))]
        else:
            to = colleagues[int(rng.integers(len(colleagues)))].email
            subject = SUBJECTS_INTERNAL[int(rng.integers(len(SUBJECTS_INTERNAL)))]
        n_att = int(rng.random() < (0.5 if external else 0.2))
        att = f"{DOC_WORDS[int(rng.integers(len(DOC_WORDS)))]}.pdf" if n_att else ""
        att_bytes = int(rng.lognormal(12.5, 0.8)) if n_att else 0
        ev.add(
            "mail",
            _at(day, t),
            direction="outbound",
            sender=p.email,
            recipients=to,
            cc="",
            bcc="",
            subject=subject,
            attachments=n_att,
            attachment_names=att,
            attachment_bytes=att_bytes,
            size_bytes=att_bytes + 4000,
            body="お疲れ様です。ご確認をお願いします。",
        )
    for t in times(rng.poisson(5 * scale)):
        if rng.random() < 0.25:
            sender = f"contact{int(rng.integers(1, 40))}@{CUSTOMER_DOMAINS[int(rng.integers(5))]}"
            subject = SUBJECTS_EXTERNAL[int(rng.integers(len(SUBJECTS_EXTERNAL)))]
        else:
            sender = colleagues[int(rng.integers(len(colleagues)))].email
            subject = SUBJECTS_INTERNAL[int(rng.integers(len(SUBJECTS_INTERNAL)))]
        ev.add(
            "mail",
            _at(day, t),
            direction="inbound",
            sender=sender,
            recipients=p.email,
            cc="",
            bcc="",
            subject=subject,
            attachments=0,
            attachment_names="",
            attachment_bytes=0,
            size_bytes=int(rng.integers(2000, 20000)),
            body="",
        )
    if rng.random() < 0.012:
        ev.add(
            "mail",
            _at(day, float(rng.uniform(start, end))),
            direction="inbound",
            sender=RECRUITERS[int(rng.integers(len(RECRUITERS)))],
            recipients=p.email,
            cc="",
            bcc="",
            subject=SUBJECTS_RECRUIT[int(rng.integers(len(SUBJECTS_RECRUIT)))],
            attachments=0,
            attachment_names="",
            attachment_bytes=0,
            size_bytes=6000,
            body="",
        )
    for t in times(rng.poisson(8 * scale)):
        site = BUSINESS_SITES[int(rng.integers(len(BUSINESS_SITES)))]
        action, out = "visit", int(rng.integers(300, 3000))
        if rng.random() < 0.05:
            site, action, out = SANCTIONED_CLOUD, "upload", int(rng.lognormal(12, 1))
        ev.add(
            "web",
            _at(day, t),
            user=p.user,
            host=host,
            url=f"https://{site}/",
            action=action,
            bytes_out=out,
        )


def _burst(
    rng: np.random.Generator,
    ev: _Events,
    p: Person,
    host: str,
    day: date,
    share: str,
    at: float,
    step: float,
    count: int,
    actions: tuple[str, ...],
    size: tuple[float, float],
    secret: float,
    **values: str,
) -> None:
    """``count`` file events ``step`` hours apart; ``secret`` is the share of 極秘 paths."""
    for k in range(count):
        hidden = secret >= 1.0 or (secret > 0.0 and rng.random() < secret)
        path, _ = _doc(rng, share, secret=hidden)
        ev.add(
            "file_access",
            _at(day, at + k * step),
            user=p.user,
            host=host,
            action=actions[k % len(actions)],
            path=path,
            bytes=int(rng.lognormal(*size)),
            **values,
        )


def _usb(ev: _Events, p: Person, host: str, day: date, at: float, activity: str) -> None:
    ev.add(
        "device",
        _at(day, at),
        user=p.user,
        host=host,
        activity=activity,
        device_class="usb_storage",
    )


def _upload(ev: _Events, p: Person, host: str, day: date, at: float, url: str, size: int) -> None:
    ev.add("web", _at(day, at), user=p.user, host=host, url=url, action="upload", bytes_out=size)


def _incident_day(
    rng: np.random.Generator, inc: Incident, p: Person, day: date, ev: _Events
) -> None:
    host = f"PC-{p.user.upper()}"
    dept = DEPARTMENTS[p.dept]
    share, system = dept[2], dept[3][0]
    code = CODE_NAMES[p.idx % len(CODE_NAMES)]
    if inc.scenario == "leaver_theft":
        base = p.start_hour + p.hours - 0.5
        _burst(
            rng,
            ev,
            p,
            host,
            day,
            share,
            base - 2,
            0.02,
            int(rng.integers(60, 120)),
            ("download",),
            (15.5, 0.8),
            0.4,
            destination="local",
            system=system,
            classification="社外秘",
        )
        if rng.random() < 0.6:
            _usb(ev, p, host, day, base, "connect")
            _burst(
                rng,
                ev,
                p,
                host,
                day,
                share,
                base + 0.05,
                0.005,
                int(rng.integers(20, 40)),
                ("copy",),
                (16, 0.7),
                1.0,
                destination="removable",
                system=system,
                classification="極秘",
            )
        else:
            _upload(
                ev,
                p,
                host,
                day,
                base + 0.3,
                "https://www.dropbox.com/upload",
                int(rng.lognormal(20, 0.5)),
            )
        ev.add(
            "print",
            _at(day, base - 1),
            user=p.user,
            printer=f"PRN-{share.upper()}-1",
            document=f"{code}_仕様書.pdf",
            pages=int(rng.integers(80, 200)),
            copies=1,
            bytes=9_000_000,
        )
    elif inc.scenario == "usb_after_hours":
        t = 21.5 + float(rng.uniform(0, 1.5))
        ev.add("logon", _at(day, t - 0.2), user=p.user, host=host, activity="logon", remote="false")
        _usb(ev, p, host, day, t, "connect")
        _burst(
            rng,
            ev,
            p,
            host,
            day,
            share,
            t + 0.02,
            0.004,
            int(rng.integers(30, 60)),
            ("copy",),
            (16, 0.8),
            0.5,
            destination="removable",
            system=system,
            classification="秘",
        )
        _usb(ev, p, host, day, t + 0.6, "disconnect")
        ev.add(
            "logon", _at(day, t + 0.7), user=p.user, host=host, activity="logoff", remote="false"
        )
    elif inc.scenario == "self_forward_codenames":
        for _ in range(int(rng.integers(2, 5))):
            t = float(rng.uniform(p.start_hour + 1, p.start_hour + p.hours - 1))
            names = f"{code}_design_review.pptx;{code}_図面_rev{int(rng.integers(1, 9))}.dwg"
            ev.add(
                "mail",
                _at(day, t),
                direction="outbound",
                sender=p.email,
                recipients=p.personal_email,
                cc="",
                bcc="",
                subject=f"Fwd: {code} 設計図 最新版",
                attachments=2,
                attachment_names=names,
                attachment_bytes=int(rng.lognormal(16, 0.5)),
                size_bytes=int(rng.lognormal(16, 0.5)),
                body=f"{code} の仕様書と図面を送ります。",
            )
    elif inc.scenario == "cross_dept_top_secret":
        t = float(rng.uniform(p.start_hour + 2, p.start_hour + p.hours - 1))
        _burst(
            rng,
            ev,
            p,
            host,
            day,
            DEPARTMENTS[0][2],
            t,
            0.01,
            int(rng.integers(15, 35)),
            ("open", "read", "download"),
            (14, 1),
            1.0,
            destination="local",
            system="cad-vault",
            classification="極秘",
        )
    elif inc.scenario == "late_night_cloud":
        t = 1.0 + float(rng.uniform(0, 1.5))
        ev.add(
            "logon", _at(day, t - 0.1), user=p.user, host="VPN-GW", activity="logon", remote="true"
        )
        _burst(
            rng,
            ev,
            p,
            "VPN-GW",
            day,
            share,
            t,
            0.004,
            int(rng.integers(80, 150)),
            ("read",),
            (14.5, 1),
            0.3,
            destination="local",
            system=system,
            classification="社外秘",
        )
        _upload(
            ev,
            p,
            "VPN-GW",
            day,
            t + 0.8,
            "https://drive.google.com/upload",
            int(rng.lognormal(20.5, 0.4)),
        )
        ev.add(
            "logon", _at(day, t + 1.0), user=p.user, host="VPN-GW", activity="logoff", remote="true"
        )
    elif inc.scenario == "first_time_usb_leak":
        t = 20.0 + float(rng.uniform(0, 2.5))
        ev.add("logon", _at(day, t), user=p.user, host=host, activity="logon", remote="false")
        _usb(ev, p, host, day, t + 0.1, "connect")
        if rng.random() < 0.5:  # the agent does not always see the files, only the device
            _burst(
                rng, ev, p, host, day, share, t + 0.15, 0.01, int(rng.integers(3, 12)),
                ("copy",), (15, 0.8), 0.3,
                destination="removable", system=system, classification="秘",
            )  # fmt: skip
        site = LEAK_SITES[int(rng.integers(len(LEAK_SITES)))]
        upload = rng.random() < 0.5
        ev.add(
            "web", _at(day, t + 0.5), user=p.user, host=host, url=site,
            action="upload" if upload else "visit",
            bytes_out=int(rng.lognormal(16, 0.7)) if upload else int(rng.integers(300, 3000)),
        )  # fmt: skip
        _usb(ev, p, host, day, t + 0.8, "disconnect")
        ev.add(
            "logon", _at(day, t + 1.0), user=p.user, host=host, activity="logoff", remote="false"
        )
    elif inc.scenario == "slow_theft":
        t = float(rng.uniform(p.start_hour + 1, p.start_hour + p.hours - 1))
        _burst(
            rng,
            ev,
            p,
            host,
            day,
            share,
            t,
            0.05,
            int(rng.integers(3, 6)),
            ("upload",),
            (14, 0.5),
            1.0,
            destination="cloud",
            system=system,
            classification="極秘",
        )
        _upload(
            ev, p, host, day, t + 0.3, "https://gigafile.nu/upload", int(rng.lognormal(15, 0.5))
        )


VENDOR_ACCOUNT = "ext-vendor01"


def _feed_noise(rng: np.random.Generator, day: date, ev: _Events, workday: bool) -> None:
    """What real feeds carry: a maintenance account missing from the roster (quarantined as an
    unknown user) and a proxy that sometimes logs a request twice (dropped as a duplicate)."""
    if workday and rng.random() < 0.2:
        ev.add(
            "logon",
            _at(day, float(rng.uniform(10, 16))),
            user=VENDOR_ACCOUNT,
            host="SRV-MES01",
            activity="logon",
            remote="true",
        )
    if ev.rows["web"] and rng.random() < 0.3:
        ev.rows["web"].append(dict(ev.rows["web"][-1]))


def generate(
    users: int,
    days: int,
    seed: int,
    out: Path,
    start: date = date(2024, 4, 1),
    scale: float = 1.0,
    compress: bool = True,
) -> dict[str, int]:
    """Write a landing folder under ``out``; returns rows written per source."""
    rng = np.random.default_rng(seed)
    site = load_config().site
    period = [start + timedelta(days=i) for i in range(days)]
    org = Org(_people(rng, users, start))
    if days >= 30 and users >= 40:
        _plan_incidents(rng, org, period, site)
    incident_days: dict[tuple[int, date], list[Incident]] = defaultdict(list)
    for inc in org.incidents:
        for d in inc.days:
            incident_days[(inc.user, d)].append(inc)
    ev = _Events()
    for day in period:
        workday = is_workday(day, site)
        for p in org.people:
            if p.last_day is not None and day > p.last_day:
                continue
            if workday:
                present = rng.random() > 0.04
            else:
                present = rng.random() < (0.35 if p.night_shift else 0.03)
            if present:
                _normal_day(rng, p, day, ev, scale, workday, org.people)
            for inc in incident_days.get((p.idx, day), []):
                _incident_day(rng, inc, p, day, ev)
        _feed_noise(rng, day, ev, workday)
    out.mkdir(parents=True, exist_ok=True)
    written = _write_sources(ev, out, start, period[-1], compress)
    _write_roster(org, out)
    _write_labels(org, out)
    _write_site_config(out)
    return written


def _write_sources(
    ev: _Events,
    out: Path,
    first: date,
    last: date,
    compress: bool,
) -> dict[str, int]:
    written: dict[str, int] = {}
    for source, rows in ev.rows.items():
        frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
            pl.col("timestamp").dt.date().alias("_day")
        )
        frame = frame.filter(pl.col("_day").is_between(first, last)).sort("timestamp")
        columns = [c for c in SOURCES[source].names if c in frame.columns]
        stamp = pl.col("timestamp")
        if source == "web":  # proxies log in UTC: exercise the offset path
            stamp = (
                stamp.dt.replace_time_zone("Asia/Tokyo")
                .dt.convert_time_zone("UTC")
                .dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            )
        else:
            stamp = stamp.dt.strftime("%Y-%m-%d %H:%M:%S")
        frame = frame.with_columns(stamp.alias("timestamp"))
        folder = out / source
        folder.mkdir(parents=True, exist_ok=True)
        for (day,), part in frame.group_by("_day", maintain_order=True):
            text = part.select(columns).write_csv()
            name = f"{day:%Y-%m-%d}.csv"
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
            else:
                (folder / name).write_text(text, encoding="utf-8")
        written[source] = frame.height
    return written


def _write_roster(org: Org, out: Path) -> None:
    (out / "hr").mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, SOURCES["hr"].names, lineterminator="\n")
    writer.writeheader()
    for p in org.people:
        writer.writerow(
            {
                "user": p.user,
                "name": p.name,
                "email": p.email,
                "department": p.department,
                "role": p.role,
                "supervisor": p.supervisor,
                "hire_date": p.hire_date.isoformat(),
                "notice_date": p.notice_date.isoformat() if p.notice_date else "",
                "last_day": p.last_day.isoformat() if p.last_day else "",
                "last_day_source": "hr" if p.last_day else "",
                "priority": "true" if p.priority else "false",
                "personal_emails": p.personal_email,
            }
        )
    (out / "hr" / "employees.csv").write_text(buf.getvalue(), encoding="utf-8")


def _write_labels(org: Org, out: Path) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["user", "scenario", "date"])
    for inc in org.incidents:
        for d in sorted(inc.days):
            writer.writerow([org.people[inc.user].user, inc.scenario, d.isoformat()])
    (out / "labels.csv").write_text(buf.getvalue(), encoding="utf-8")


def _write_site_config(out: Path) -> None:
    lines = [
        "# Site settings of the synthetic organisation (written by `insiderwatch samples`).",
        "[site]",
        f'internal_domains = ["{DOMAIN}"]',
        "",
        "[lists]",
        "competitor_domains = [" + ", ".join(f'"{d}"' for d in COMPETITOR_DOMAINS) + "]",
        "sanctioned_cloud = [" + f'"{SANCTIONED_CLOUD}"' + "]",
        "code_names = [" + ", ".join(f'"{c}"' for c in CODE_NAMES) + "]",
        "",
    ]
    (out / "insiderwatch.toml").write_text("\n".join(lines), encoding="utf-8")
