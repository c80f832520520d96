package admin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/server/manage"
	"github.com/keygate/keygate/server/render"
	"github.com/keygate/keygate/storage"
)

// Groups in the console: the list, a group's page with its members, and
// the forms that change them. Every change is a manage call, so removing a
// member or deleting a group revokes, in the same transaction, what its
// members may no longer use.

// GroupRef names a group on another page.
type GroupRef struct {
	ID, Name, MinACR string
}

// GroupRow is one group in the list.
type GroupRow struct {
	ID, Name, Description, MinACR, Created, Updated string
	Members                                         int
}

// GroupForm is the create and edit form.
type GroupForm struct {
	Name, Description string
	ACRs              []Option
}

// GroupsData is the group list and the form to create one.
type GroupsData struct {
	Base
	Groups []GroupRow
	Form   GroupForm
}

// GroupData is one group's page.
type GroupData struct {
	Base
	Group   GroupRow
	Form    GroupForm
	Members []MemberRow
	// Apps are the apps that allow this group (shown to those who may
	// read apps).
	Apps []AppRow
}

// MemberRow is a member of a group.
type MemberRow struct {
	ID, Email, Name, Role string
	Suspended             bool
}

// groupACROptions are the choices of a group's minimum assurance.
func groupACROptions(selected string) []Option {
	return []Option{
		{"", "None: each app's own level", selected == ""},
		{"mfa", "mfa: two factors (an authenticator app is enough)", selected == "mfa"},
		{"phr", "phr: phishing-resistant (a security key or passkey)", selected == "phr"},
		{"phrh", "phrh: phishing-resistant and hardware-bound", selected == "phrh"},
	}
}

func groupRow(g storage.Group, members int) GroupRow {
	return GroupRow{ID: g.ID, Name: g.Name, Description: g.Description, MinACR: g.MinACR,
		Created: when(g.CreatedAt), Updated: when(g.UpdatedAt), Members: members}
}

// groupOptions are the existing groups, by name, without those in skip.
func (h *Handler) groupOptions(ctx context.Context, skip []storage.Group) ([]Option, error) {
	groups, err := h.d.Store.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	var out []Option
	for _, g := range groups {
		if !slices.ContainsFunc(skip, func(x storage.Group) bool { return x.ID == g.ID }) {
			out = append(out, Option{Value: g.Name, Label: g.Name})
		}
	}
	return out, nil
}

// getGroup loads a group or answers 404.
func (h *Handler) getGroup(ctx context.Context, id string) (storage.Group, error) {
	g, err := h.d.Store.GetGroup(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return g, errNoGroup
	}
	return g, err
}

var errNoGroup = httpx.Errorf(http.StatusNotFound, "No such group.", nil)

// groupSpec checks a group's settings as forms and the API give them. A
// name another group has is a conflict (409), like a taken email.
func (h *Handler) groupSpec(ctx context.Context, id, name, description, minACR string) (manage.GroupSpec, error) {
	spec := manage.GroupSpec{Name: strings.TrimSpace(name), Description: strings.TrimSpace(description), MinACR: minACR}
	if !slices.ContainsFunc(groupACROptions(""), func(o Option) bool { return o.Value == minACR }) {
		return spec, httpx.Errorf(http.StatusBadRequest, `The minimum assurance is none (""), mfa, phr or phrh.`, nil)
	}
	g, err := h.d.Store.GetGroupByName(ctx, spec.Name)
	switch {
	case err == nil && g.ID != id:
		return spec, httpx.Errorf(http.StatusConflict, "A group named "+g.Name+" exists already.", nil)
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return spec, err
	}
	return spec, nil
}

func (h *Handler) groupsPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	groups, err := h.d.Store.ListGroups(ctx)
	if err != nil {
		return err
	}
	counts, err := h.d.Store.CountGroupMembers(ctx)
	if err != nil {
		return err
	}
	data := GroupsData{Base: h.base(r, p, "groups"), Form: GroupForm{ACRs: groupACROptions("")}}
	for _, g := range groups {
		data.Groups = append(data.Groups, groupRow(g, counts[g.ID]))
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminGroups, "Groups", data)
}

func (h *Handler) createGroupPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	spec, err := h.groupSpec(r.Context(), "", r.PostFormValue("name"), r.PostFormValue("description"), r.PostFormValue("min_acr"))
	if err != nil {
		return err
	}
	g, err := h.manager(r, p).CreateGroup(r.Context(), spec)
	if err != nil {
		return err
	}
	return backToGroup(w, r, g.ID, "group-created")
}

func (h *Handler) groupPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	ctx := r.Context()
	g, err := h.getGroup(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	members, err := h.d.Store.ListGroupMembers(ctx, g.ID)
	if err != nil {
		return err
	}
	data := GroupData{Base: h.base(r, p, "groups"), Group: groupRow(g, len(members)),
		Form: GroupForm{Name: g.Name, Description: g.Description, ACRs: groupACROptions(g.MinACR)}}
	for _, u := range members {
		data.Members = append(data.Members, MemberRow{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Suspended: u.Suspended()})
	}
	if data.Can.Apps {
		clients, err := h.d.Store.ListClients(ctx)
		if err != nil {
			return err
		}
		for _, c := range clients {
			if slices.Contains(c.AllowedGroups, g.ID) {
				data.Apps = append(data.Apps, appRow(c, nil))
			}
		}
	}
	return h.render(w, r, p, http.StatusOK, render.PageAdminGroup, g.Name, data)
}

func backToGroup(w http.ResponseWriter, r *http.Request, id, notice string) error {
	http.Redirect(w, r, withNotice("/admin/groups/"+url.PathEscape(id), notice), http.StatusSeeOther)
	return nil
}

func (h *Handler) updateGroupPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if _, err := h.getGroup(r.Context(), id); err != nil {
		return err
	}
	spec, err := h.groupSpec(r.Context(), id, r.PostFormValue("name"), r.PostFormValue("description"), r.PostFormValue("min_acr"))
	if err != nil {
		return err
	}
	if err := h.manager(r, p).UpdateGroup(r.Context(), id, spec); err != nil {
		return err
	}
	return backToGroup(w, r, id, "group-updated")
}

func (h *Handler) deleteGroupPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	if err := h.manager(r, p).DeleteGroup(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	http.Redirect(w, r, withNotice("/admin/groups", "group-deleted"), http.StatusSeeOther)
	return nil
}
