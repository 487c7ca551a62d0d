// /admin/users (administrators and the owner): add users, change roles, deactivate, reset MFA.
"use strict";

const ROLES = ["viewer", "member", "analyst", "administrator"];
let page = 1;

function roleCell(user) {
  if (user.role === "owner") return el("td", {}, "owner");
  const select = el("select", { "data-role-of": user.id },
    ...ROLES.map((r) => el("option", { value: r, selected: r === user.role }, r)));
  select.addEventListener("change", () => act(select, async () => {
    try {
      await api("PATCH", `/api/v1/users/${user.id}/`, { role: select.value });
      say(`${user.email} is now ${select.value}.`, "ok");
    } finally {
      await load(); // a refused change shows the role the user still has
    }
  }));
  return el("td", {}, select);
}

function actionsCell(user) {
  const cell = el("td", {});
  if (user.role === "owner") return cell;
  cell.append(
    el("button", {
      class: user.is_active ? "danger" : "secondary",
      "data-toggle-active": user.id,
      onclick: (e) => act(e.target, async () => {
        await api("PATCH", `/api/v1/users/${user.id}/`, { is_active: !user.is_active });
        say(`${user.email} ${user.is_active ? "deactivated: their sessions and keys stop working" : "reactivated"}.`, "ok");
        await load();
      }),
    }, user.is_active ? "Deactivate" : "Reactivate"),
  );
  if (user.mfa_enabled) {
    cell.append(" ", el("button", {
      class: "secondary",
      "data-reset-mfa": user.id,
      onclick: (e) => act(e.target, async () => {
        await api("POST", `/api/v1/users/${user.id}/reset-mfa/`);
        say(`Two-factor authentication reset for ${user.email}: they sign in with the password alone.`, "ok");
        await load();
      }),
    }, "Reset two-factor"));
  }
  return cell;
}

async function load() {
  const answer = await api("GET", `/api/v1/users/?page=${page}&page_size=50`);
  $("#users tbody").replaceChildren(...answer.results.map((u) => el("tr", { "data-user-id": u.id },
    el("td", {}, u.email),
    el("td", {}, u.name || "—"),
    roleCell(u),
    el("td", {}, el("span", { class: `badge ${u.is_active ? "active" : "inactive"}` }, u.is_active ? "active" : "inactive")),
    el("td", {}, u.mfa_enabled ? "on" : "off"),
    el("td", {}, when(u.created_at)),
    actionsCell(u),
  )));
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
    say(`${user.email} added as ${user.role}.`, "ok");
    await load();
  });
}

if (requireSession()) {
  $("#create").addEventListener("submit", create);
  $("#previous").addEventListener("click", () => { page -= 1; act(null, load); });
  $("#next").addEventListener("click", () => { page += 1; act(null, load); });
  act(null, async () => {
    await refreshUser();
    if (!Session.isAdmin()) {
      $("#create").hidden = true;
      throw new Error("Only administrators and the owner manage users.");
    }
    await load();
  });
}
