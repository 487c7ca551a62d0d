// /admin/users (administrators and the owner): add users, change roles, deactivate, unlock,
// set a temporary password
// after failed logins, reset MFA.
// Nothing destructive happens on one click or key press: a role change takes an explicit Save
// and a confirmation, deactivation a confirmation naming what stops working.
import {
  $, act, adminOnly, api, confirmIn, el, refreshUser, requireSession, resumeFields, say, Session, when,
} from "./common.js";

const ROLES = ["viewer", "member", "analyst", "administrator"];
const ROLE_MEANS = {
  viewer: "can only read",
  member: "can read and create some content",
  analyst: "can generate reports and manage their own content",
  administrator: "can manage users, keys and the audit log of the organization",
};
let page = 1;

function roleCell(user, actions) {
  if (user.role === "owner") return el("td", {}, "owner");
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
  return el("td", {}, select, " ", save);
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

async function load() {
  const answer = await api("GET", `/api/v1/users/?page=${page}&page_size=50`);
  $("#users tbody").replaceChildren(...answer.results.map((u) => {
    const actions = el("td", { class: "row-actions" });
    fillActions(actions, u);
    return el("tr", { "data-user-id": u.id },
      el("td", {}, u.email),
      el("td", {}, u.name || "—"),
      roleCell(u, actions),
      el("td", {}, el("span", { class: `badge ${u.is_active ? "active" : "inactive"}` }, u.is_active ? "active" : "inactive")),
      el("td", {}, u.mfa_enabled ? "on" : "off"),
      el("td", {}, when(u.created_at)),
      actions,
    );
  }));
  $("#previous").disabled = !answer.previous;
  $("#next").disabled = !answer.next;
  $("#position").textContent = `${answer.count} user${answer.count === 1 ? "" : "s"}, page ${page}`;
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
  $("#previous").addEventListener("click", (e) => { page -= 1; act(e.target, load); });
  $("#next").addEventListener("click", (e) => { page += 1; act(e.target, load); });
  act(null, async () => {
    await refreshUser();
    if (adminOnly("Users")) return;
    await load();
    resumeFields();
  });
}
