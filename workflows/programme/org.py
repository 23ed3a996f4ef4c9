"""The organization: branches, Party groups, people, their roles and the committee's contact points.

Roles decide who may act on which task (see `workflows.programme.inbox`). Branch-scoped roles (secretary,
branch committee member, group leader, party-affairs officer) are granted for one branch; company
roles (office, leadership group, committee member, inspector) are not. Functions never commit.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from workflows.engine import audit
from workflows.engine.errors import Conflict, FormInvalid, InvalidInput, NotFound
from workflows.engine.models import Base, UTCDateTime
from workflows.programme import credentials, passwords

ROLES = {
    "office": "党委工作室",
    "leader": "标准化工作领导小组",
    "committee": "党委委员",
    "secretary": "党支部书记",
    "branch_member": "支部委员",
    "group_leader": "党小组长",
    "officer": "党务干事",
    "inspector": "督查验收人员",
}
BRANCH_ROLES = ("secretary", "branch_member", "group_leader", "officer")
CLASSIFICATIONS = ("先进", "一般", "软弱")
TITLES = ("组长", "副组长", "成员")  # within the leadership group (role `leader`), in rank order


class Branch(Base):
    """A grassroots Party branch (党支部)."""

    __tablename__ = "branches"

    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    classification: Mapped[str | None] = mapped_column(String(10))  # 先进 / 一般 / 软弱
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    term_start: Mapped[date | None] = mapped_column(Date)
    term_end: Mapped[date | None] = mapped_column(Date)
    demonstration: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PartyGroup(Base):
    """A Party group (党小组) inside a branch."""

    __tablename__ = "party_groups"
    __table_args__ = (UniqueConstraint("branch_code", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"))
    name: Mapped[str] = mapped_column(String(100))
    leader: Mapped[str | None] = mapped_column(ForeignKey("users.username"))


class User(Base):
    """A person who signs in. `display_name` is their name; `shown_name` adds a leadership-group title."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    title: Mapped[str | None] = mapped_column(String(10))  # 组长 / 副组长 / 成员, leadership group only

    @property
    def shown_name(self) -> str:
        """The name pages show: “姓名（组长）” for a titled leadership-group member, else the name."""
        return f"{self.display_name}（{self.title}）" if self.title else self.display_name


class RoleGrant(Base):
    """One role of one person; `branch_code` is set exactly for the branch-scoped roles."""

    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("username", "role", "branch_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    role: Mapped[str] = mapped_column(String(30))
    branch_code: Mapped[str | None] = mapped_column(ForeignKey("branches.code"), index=True)


class ContactPoint(Base):
    """A committee member's contact branch (联系点): visited monthly, attached until it passes."""

    __tablename__ = "contact_points"
    __table_args__ = (UniqueConstraint("username", "branch_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(ForeignKey("users.username"), index=True)
    branch_code: Mapped[str] = mapped_column(ForeignKey("branches.code"), index=True)


def _audit(
    session: Session, action: str, actor: str, now: datetime, *, data: dict, branch: str | None = None
) -> None:
    """Every change to the organization is an audit event."""
    audit.append(session, action=action, actor=actor, occurred_at=now, branch=branch, data=data)


def add_branch(
    session: Session,
    code: str,
    name: str,
    *,
    now: datetime,
    actor: str,
    members: int = 0,
    classification: str | None = None,
    term_start: date | None = None,
    term_end: date | None = None,
) -> Branch:
    """Register a branch; its code must be new."""
    code, name = code.strip(), name.strip()
    if not code or not name:
        raise InvalidInput("党支部编号和名称不能为空")
    if members < 0:
        raise InvalidInput("党员人数不能为负数")
    if term_start and term_end and term_end <= term_start:
        raise InvalidInput("任期届满日期应晚于任期开始日期")
    if classification is not None and classification not in CLASSIFICATIONS:
        raise InvalidInput(f"分类应为 {'/'.join(CLASSIFICATIONS)} 之一")
    if session.get(Branch, code) is not None:
        raise Conflict(f"党支部编号 {code} 已存在")
    branch = Branch(
        code=code,
        name=name,
        member_count=members,
        classification=classification,
        term_start=term_start,
        term_end=term_end,
        demonstration=False,
        active=True,
        created_at=now,
    )
    session.add(branch)
    session.flush()
    _audit(
        session,
        "org.branch_added",
        actor,
        now,
        branch=code,
        data={
            "code": code,
            "name": name,
            "members": members,
            "classification": classification,
            "term_start": term_start.isoformat() if term_start else None,
            "term_end": term_end.isoformat() if term_end else None,
        },
    )
    return branch


def add_group(
    session: Session, branch_code: str, name: str, *, leader: str | None, now: datetime, actor: str
) -> PartyGroup:
    """Set up a Party group (党小组) in a branch; its leader, if named, must be a person of the branch."""
    branch(session, branch_code)
    name = name.strip()
    if not name:
        raise InvalidInput("党小组名称不能为空")
    if leader is not None and leader not in people_of(session, branch_code):
        raise InvalidInput(f"党小组长“{leader}”不是本党支部人员")
    if session.scalar(
        select(PartyGroup.id).where(PartyGroup.branch_code == branch_code, PartyGroup.name == name)
    ):
        raise Conflict(f"党支部 {branch_code} 已有党小组“{name}”")
    group = PartyGroup(branch_code=branch_code, name=name, leader=leader)
    session.add(group)
    session.flush()
    _audit(
        session,
        "org.group_added",
        actor,
        now,
        branch=branch_code,
        data={"branch": branch_code, "name": name, "leader": leader},
    )
    return group


def groups(session: Session, branch_code: str) -> list[PartyGroup]:
    """The Party groups of a branch, by name."""
    return list(
        session.scalars(
            select(PartyGroup).where(PartyGroup.branch_code == branch_code).order_by(PartyGroup.name)
        )
    )


def branch(session: Session, code: str) -> Branch:
    """A branch by code, or NotFound."""
    found = session.get(Branch, code)
    if found is None:
        raise NotFound(f"党支部 {code} 不存在")
    return found


def active_branches(session: Session) -> list[Branch]:
    """Every active branch, by code."""
    return list(session.scalars(select(Branch).where(Branch.active.is_(True)).order_by(Branch.code)))


def classify(session: Session, code: str, classification: str, *, now: datetime, actor: str) -> None:
    """Set a branch's classification (先进/一般/软弱)."""
    if classification not in CLASSIFICATIONS:
        raise InvalidInput(f"分类应为 {'/'.join(CLASSIFICATIONS)} 之一")
    found = branch(session, code)
    if found.classification != classification:
        found.classification = classification
        _audit(
            session,
            "org.branch_classified",
            actor,
            now,
            branch=code,
            data={"code": code, "classification": classification},
        )


def set_demonstration(session: Session, codes: list[str], *, now: datetime, actor: str) -> list[str]:
    """Make exactly these branches the demonstration branches (示范点); return their codes."""
    for each in codes:
        branch(session, each)
    for each in session.scalars(select(Branch)):
        each.demonstration = each.code in codes
    session.flush()
    _audit(session, "org.demonstration_set", actor, now, data={"branches": sorted(codes)})
    return sorted(codes)


def add_user(
    session: Session,
    username: str,
    *,
    password: str | None,
    role: str,
    now: datetime,
    actor: str,
    branch_code: str | None = None,
    display_name: str | None = None,
    title: str | None = None,
) -> User:
    """Create a person with one role, or grant an existing person one more role.

    A new person needs a password that meets the policy. For an existing person a password is not
    needed; one that differs from theirs is refused (it would be ignored): `set_password` changes it.
    `title` (组长/副组长/成员) is for the leadership group (role `leader`) only; given again for a
    person who already has that role, it changes their title.
    """
    username = username.strip()
    if not username:
        raise InvalidInput("用户名不能为空")
    if role not in ROLES:
        raise InvalidInput(f"未知角色 {role}，可选：{', '.join(ROLES)}")
    _check_title(role, title)
    if role in BRANCH_ROLES and not branch_code:
        raise InvalidInput(f"角色 {role}（{ROLES[role]}）须用 --branch 指定所在党支部")
    if role not in BRANCH_ROLES and branch_code:
        raise InvalidInput(f"角色 {role}（{ROLES[role]}）属于公司层面，不能指定党支部")
    if branch_code:
        branch(session, branch_code)
    user = session.get(User, username)
    if user is None:
        problem = passwords.problem(username, password or "")
        if problem is not None:
            raise FormInvalid({"password": problem})
        user = User(
            username=username,
            display_name=display_name or username,
            password_hash=passwords.hashed(password),
            active=True,
            created_at=now,
            title=title,
        )
        session.add(user)
        session.flush()  # the grant below references this row; there is no relationship to order them
    elif password is not None and not passwords.matches(user.password_hash, password):
        raise InvalidInput(
            f"用户 {username} 已存在，给出的密码与现有密码不同，未作任何更改；改密码请用 zhibu user passwd"
        )
    elif session.scalar(
        select(RoleGrant.id).where(
            RoleGrant.username == username, RoleGrant.role == role, RoleGrant.branch_code == branch_code
        )
    ):
        if title is None or title == user.title:
            raise Conflict(f"用户 {username} 已有该角色")
        return set_title(session, username, title, now=now, actor=actor)
    elif title is not None:
        user.title = title
    session.add(RoleGrant(username=username, role=role, branch_code=branch_code))
    session.flush()
    data = {"username": username, "role": role, "branch": branch_code}
    if title is not None:
        data["title"] = title
    _audit(session, "org.role_granted", actor, now, branch=branch_code, data=data)
    return user


def _check_title(role: str, title: str | None) -> None:
    if title is None:
        return
    if role != "leader":
        raise InvalidInput(f"职务“{title}”只用于{ROLES['leader']}成员（角色 leader），不能用于{ROLES[role]}")
    if title not in TITLES:
        raise InvalidInput(f"{ROLES['leader']}职务应为 {'/'.join(TITLES)} 之一，不能是“{title}”")


def set_title(session: Session, username: str, title: str, *, now: datetime, actor: str) -> User:
    """Change the title (组长/副组长/成员) of a member of the leadership group."""
    _check_title("leader", title)
    found = user(session, username)
    if ("leader", None) not in grants(session, username):
        raise InvalidInput(f"用户 {username} 不是{ROLES['leader']}成员，不能设置职务")
    before, found.title = found.title, title
    session.flush()
    _audit(
        session, "org.title_set", actor, now, data={"username": username, "title": title, "before": before}
    )
    return found


def leadership_group(session: Session) -> list[User]:
    """The active members of the leadership group: 组长 first, then 副组长, 成员, untitled; by username."""
    members = session.scalars(
        select(User)
        .join(RoleGrant, RoleGrant.username == User.username)
        .where(RoleGrant.role == "leader", User.active.is_(True))
        .distinct()
    )
    rank = {title: n for n, title in enumerate(TITLES)}
    return sorted(members, key=lambda u: (rank.get(u.title or "", len(TITLES)), u.username))


def user(session: Session, username: str) -> User:
    """A person by username, or NotFound."""
    found = session.get(User, username)
    if found is None:
        raise NotFound(f"用户 {username} 不存在")
    return found


def lock_account(session: Session, username: str) -> User | None:
    """Lock a person's row (if they exist) so that sign-in attempts at one account run one at a time."""
    if not 0 < len(username) <= 100:
        return None
    return session.scalar(select(User).where(User.username == username).with_for_update())


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this password, or None; an unknown name costs one hash check like a known one."""
    found = session.get(User, username) if 0 < len(username) <= 100 else None
    if not passwords.matches(found.password_hash if found is not None else None, password):
        return None
    return found if found.active else None


def set_password(session: Session, username: str, password: str, *, now: datetime, actor: str) -> int:
    """Change a person's password (policy checked) and end their sessions and tokens.

    Returns how many sessions and tokens were ended."""
    found = user(session, username)
    problem = passwords.problem(username, password)
    if problem is not None:
        raise FormInvalid({"password": problem})
    found.password_hash = passwords.hashed(password)
    session.flush()
    _audit(session, "org.password_changed", actor, now, data={"username": username})
    return credentials.end_all(session, username, now=now, actor=actor)


def grants(session: Session, username: str) -> list[tuple[str, str | None]]:
    """(role, branch code) pairs of a person."""
    return list(
        session.execute(select(RoleGrant.role, RoleGrant.branch_code).where(RoleGrant.username == username))
    )


def add_contact(
    session: Session, username: str, branch_code: str, *, now: datetime, actor: str
) -> ContactPoint:
    """Make a committee member the contact (联系包抓) of a branch."""
    user(session, username)
    branch(session, branch_code)
    if ("committee", None) not in grants(session, username):
        raise InvalidInput(f"用户 {username} 不是党委委员，不能联系党支部")
    if session.scalar(
        select(ContactPoint.id).where(
            ContactPoint.username == username, ContactPoint.branch_code == branch_code
        )
    ):
        raise Conflict(f"{username} 已联系党支部 {branch_code}")
    point = ContactPoint(username=username, branch_code=branch_code)
    session.add(point)
    session.flush()
    _audit(
        session,
        "org.contact_added",
        actor,
        now,
        branch=branch_code,
        data={"username": username, "branch": branch_code},
    )
    return point


def contact_branches(session: Session, username: str) -> list[str]:
    """Codes of the branches a committee member contacts."""
    return list(
        session.scalars(
            select(ContactPoint.branch_code)
            .where(ContactPoint.username == username)
            .order_by(ContactPoint.branch_code)
        )
    )


def contacts_of(session: Session, branch_code: str) -> list[str]:
    """Usernames of the committee members who contact a branch."""
    return list(
        session.scalars(
            select(ContactPoint.username)
            .where(ContactPoint.branch_code == branch_code)
            .order_by(ContactPoint.username)
        )
    )


def people_of(session: Session, branch_code: str, roles: tuple[str, ...] = BRANCH_ROLES) -> list[str]:
    """Usernames holding any of `roles` in a branch."""
    return list(
        session.scalars(
            select(RoleGrant.username)
            .where(RoleGrant.branch_code == branch_code, RoleGrant.role.in_(roles))
            .distinct()
            .order_by(RoleGrant.username)
        )
    )


def roster(session: Session, branch_code: str) -> list[tuple[str, str]]:
    """The branch's people as (username, "姓名（职务）"), for choosing a person by name, not by typing."""
    rows = session.execute(
        select(User.username, User.display_name, RoleGrant.role)
        .join(RoleGrant, RoleGrant.username == User.username)
        .where(RoleGrant.branch_code == branch_code, RoleGrant.role.in_(BRANCH_ROLES), User.active.is_(True))
        .order_by(User.username)
    )
    people: dict[str, tuple[str, list[str]]] = {}
    for username, name, role in rows:
        people.setdefault(username, (name, []))[1].append(ROLES[role])
    return [(username, f"{name}（{'、'.join(roles)}）") for username, (name, roles) in people.items()]


def holders(session: Session, role: str) -> list[str]:
    """Usernames holding a company-level role."""
    return list(
        session.scalars(select(RoleGrant.username).where(RoleGrant.role == role).order_by(RoleGrant.username))
    )
