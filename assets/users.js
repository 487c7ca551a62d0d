// /admin/users (administrators and the owner): add users, change roles, deactivate, unlock,
// set a temporary password
// after failed logins, reset MFA.
// Nothing destructive happens on one click or key press: a role change takes an explicit Save
// and a confirmation, deactivation a confirmation naming what stops working.
import {
  $, act, adminOnly, api, confirmIn, countText, el, fetchListPage, listParams, onListChange, PAGE_SIZE, pager,
  refreshUser, requireSession, resumeFields, say, Session, setListParams, sortHeader, when,
} from "./common.js";

const ROLES = ["viewer", "member", "analyst", "administrator"];
const ROLE_MEANS = {
  viewer: "can only read",
  member: "can read and create some content",
  analyst: "can generate reports and manage their own content",
  administrator: "can manage users, keys and the audit log of the organization",
};
/** The columns the API orders users by. */
const SORTABLE = ["email", "name", "role", "created_at"];

function roleCell(user, actions) {
  if (user.role === "owner") return el("td", { "data-label": "Role" }, "owner");
  const select = el("select", { "data-role-of": user.id, "aria-label": `Role of ${user.email}` },
    ...ROLES.map((r) => el("option", { value: r, selected: r === user.role }, r)));
  const save = el("button", { class: "secondary", "data-save-role": user.id, hidden: true }, "Save");
  // Choosing only marks the row: the change is made by Save, after a confirmation.
  select.addEventListener("change", () => { save.hidden = select.value === user.role; });
  save.addEventListener("click", () => {
    // The role asked about is the one changed: the control is held until the answer.
    const role = select.value;
    select.disabled = true;
    save.hidden = true;
    confirmIn(actions,
      `Make ${user.email} ${role === "administrator" ? "an" : "a"} ${role}? They ${ROLE_MEANS[role]}; their keys follow the new role at once.`,
      "Change role", { "data-confirm-role": user.id }, async () => {
        try {
          await api("PATCH", `/api/v1/users/${user.id}/`, { role });
          say(`${user.email} is now ${role}.`, "ok");
        } finally {
          await load(); // a refused change shows the role the user still has
        }
      }, () => { select.value = user.role; select.disabled = false; fillActions(actions, user); });
  });
  return el("td", { "data-label": "Role", class: "role-cell" }, select, " ", save);
}

/** Roles by rank, the owner first. */
const RANK = { owner: 0, administrator: 1, analyst: 2, member: 3, viewer: 4 };

/** The inline form that sets a temporary password for `user` (contract 10.6). */
function askTemporaryPassword(cell, user) {
  const input = el("input", {
    type: "password", id: `temporary-${user.id}`, name: "password", autocomplete: "new-password",
    required: true, minlength: 10, "data-temporary-password": user.id,
  });
  const box = el("span", { class: "message", role: "status" });
  const form = el("form", { class: "inline" },
    el("label", { for: `temporary-${user.id}` }, `Temporary password for ${user.email}`), " ",
    input, " ",
    el("button", { class: "danger", type: "submit", "data-confirm-temporary": user.id }, "Set password"), " ",
    el("button", { class: "secondary", type: "button", onclick: () => fillActions(cell, user) }, "Cancel"),
    " ", box);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(e.submitter, async () => {
      await api("POST", `/api/v1/users/${user.id}/set-password/`, { password: input.value });
      say(`Temporary password set for ${user.email}: their sessions ended, and at their next sign-in they choose their own before anything else. Tell them the password another way than this screen.`, "ok");
      fillActions(cell, user);
    }, box);
  });
  cell.replaceChildren(form);
  input.focus();
}

function fillActions(cell, user) {
  cell.replaceChildren();
  if (user.role === "owner") return;
  if (user.is_active) {
    cell.append(el("button", {
      class: "danger",
      "data-toggle-active": user.id,
      onclick: () => confirmIn(cell,
        `Deactivate ${user.email}? Their sessions end now and every API key of theirs is revoked for good; integrations using those keys stop.`,
        "Deactivate", { "data-confirm-deactivate": user.id }, async () => {
          await api("PATCH", `/api/v1/users/${user.id}/`, { is_active: false });
          say(`${user.email} deactivated: their sessions and keys stopped working.`, "ok");
          await load();
        }, () => fillActions(cell, user)),
    }, "Deactivate"));
  } else {
    cell.append(el("button", {
      class: "secondary",
      "data-toggle-active": user.id,
      onclick: (e) => act(e.target, async () => {
        await api("PATCH", `/api/v1/users/${user.id}/`, { is_active: true });
        say(`${user.email} reactivated. Their revoked keys stay revoked.`, "ok");
        await load();
      }),
    }, "Reactivate"));
  }
  if (user.is_active && !(Session.user && Session.user.id === user.id)) {
    cell.append(" ", el("button", {
      class: "secondary",
      "data-unlock": user.id,
      title: "End a lockout after failed logins",
      onclick: (e) => act(e.target, async () => {
        await api("POST", `/api/v1/users/${user.id}/unlock/`);
        say(`${user.email} may sign in again: their failed logins are forgotten and the account's lockout has ended.`, "ok");
      }),
    }, "Unlock sign-in"));
  }
  const me = Session.user;
  if (user.is_active && me && me.id !== user.id && RANK[user.role] > RANK[me.role]) {
    cell.append(" ", el("button", {
      class: "secondary",
      "data-set-password": user.id,
      title: "Their sessions end; they choose their own password at their next sign-in",
      onclick: () => askTemporaryPassword(cell, user),
    }, "Set temporary password…"));
  }
  if (user.mfa_enabled) {
    cell.append(" ", el("button", {
      class: "secondary",
      "data-reset-mfa": user.id,
      onclick: () => confirmIn(cell,
        `Turn off two-factor authentication for ${user.email}? They sign in with the password alone until they set it up again.`,
        "Reset two-factor", { "data-confirm-reset-mfa": user.id }, async () => {
          await api("POST", `/api/v1/users/${user.id}/reset-mfa/`);
          say(`Two-factor authentication reset for ${user.email}.`, "ok");
          await load();
        }, () => fillActions(cell, user)),
    }, "Reset two-factor"));
  }
}

let loads = 0;

/** The users as the address says: searched, sorted, which page. */
async function load() {
  // Answers may arrive out of order: only the latest request draws.
  const mine = ++loads;
  const { search, ordering, page: pageNo } = listParams();
  if (ordering && !SORTABLE.includes(ordering.replace(/^-/, ""))) {
    return setListParams({ ordering: null }, true);
  }
  $("#user-search").value = search;
  const query = new URLSearchParams({ page: String(pageNo), page_size: String(PAGE_SIZE) });
  if (search) query.set("search", search);
  if (ordering) query.set("ordering", ordering);
  const answer = await fetchListPage("/api/v1/users/", query, pageNo, () => mine === loads);
  if (!answer) return;
  $("#users thead").replaceChildren(el("tr", {},
    sortHeader("Email", "email", ordering), sortHeader("Name", "name", ordering),
    sortHeader("Role", "role", ordering), sortHeader("Status", null, ordering),
    sortHeader("Two-factor", null, ordering), sortHeader("Added", "created_at", ordering),
    el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Actions"))));
  const rows = answer.results.map((u) => {
    const actions = el("td", { class: "row-actions", "data-label": "Actions" });
    fillActions(actions, u);
    return el("tr", { "data-user-id": u.id },
      el("td", { "data-label": "Email" }, u.email),
      el("td", { "data-label": "Name" }, u.name || "—"),
      roleCell(u, actions),
      el("td", { "data-label": "Status" }, el("span", { class: `badge ${u.is_active ? "active" : "inactive"}` }, u.is_active ? "active" : "inactive")),
      el("td", { "data-label": "Two-factor" }, u.mfa_enabled ? "on" : "off"),
      el("td", { "data-label": "Added" }, when(u.created_at)),
      actions,
    );
  });
  $("#users tbody").replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { colspan: 7, class: "empty" }, search ? `No users match "${search}".` : "No users."))]));
  $("#position").textContent = countText(answer.count, ["user", "users"], search, pageNo);
  $("#users-pager").replaceChildren(...[pager(pageNo, answer.count)].filter(Boolean));
}

async function create(event) {
  event.preventDefault();
  await act($("#create-submit"), async () => {
    const user = await api("POST", "/api/v1/users/", {
      email: $("#email").value.trim(),
      name: $("#name").value.trim(),
      password: $("#password").value,
      role: $("#role").value,
    });
    $("#create").reset();
    say(`${user.email} added as ${user.role}. They will be asked to choose their own password.`, "ok");
    await load();
  }, $("#create-message"));
}

if (await requireSession()) {
  $("#create").addEventListener("submit", create);
  $("#user-search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setListParams({ search: $("#user-search").value.trim(), page: null });
  });
  act(null, async () => {
    await refreshUser();
    if (adminOnly("Users")) return;
    onListChange(load);
    await load();
    resumeFields();
  });
}
