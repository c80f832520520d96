package admin

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// Memberships, from both sides: a group's page adds members by email and
// removes them, a user's page adds the user to groups and removes them.
// Membership decides who gets into which app, so every change needs the
// editMembers permission and a fresh key tap (admin.go), and a removal
// needs the confirmation: it takes apps away at once.

// emailList splits what an administrator pastes — emails separated by
// spaces, commas, semicolons or new lines — into a list.
func emailList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
}

// removeMember ends the membership of user userID in group groupID, or
// answers 404 for an unknown group or user, or one who is not a member.
func (h *Handler) removeMember(r *http.Request, p *principal, groupID, userID string) error {
	ctx := r.Context()
	g, err := h.getGroup(ctx, groupID)
	if err != nil {
		return err
	}
	u, err := h.d.Store.GetUser(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return httpx.Errorf(http.StatusNotFound, "No such user.", nil)
	} else if err != nil {
		return err
	}
	groups, err := h.d.Store.ListUserGroups(ctx, u.ID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(groups, func(x storage.Group) bool { return x.ID == g.ID }) {
		return httpx.Errorf(http.StatusNotFound, u.Email+" is not a member of "+g.Name+".", nil)
	}
	return h.manager(r, p).RemoveMembers(ctx, g.ID, []string{u.Email})
}

func (h *Handler) addMembersPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	if _, err := h.getGroup(r.Context(), id); err != nil {
		return err
	}
	emails := emailList(r.PostFormValue("emails"))
	if len(emails) == 0 {
		return httpx.Errorf(http.StatusBadRequest, "Give the email of at least one user to add.", nil)
	}
	if err := h.manager(r, p).AddMembers(r.Context(), id, emails); err != nil {
		return err
	}
	return backToGroup(w, r, id, "members-added")
}

func (h *Handler) removeMemberPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := h.removeMember(r, p, id, r.PathValue("userID")); err != nil {
		return err
	}
	return backToGroup(w, r, id, "member-removed")
}

func (h *Handler) joinGroupPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	u, err := h.d.Store.GetUser(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return httpx.Errorf(http.StatusNotFound, "No such user.", nil)
	} else if err != nil {
		return err
	}
	name := strings.TrimSpace(r.PostFormValue("group"))
	if name == "" {
		return httpx.Errorf(http.StatusBadRequest, "Choose a group.", nil)
	}
	m := h.manager(r, p)
	g, err := m.GroupByName(r.Context(), name)
	if err != nil {
		return err
	}
	if err := m.AddMembers(r.Context(), g.ID, []string{u.Email}); err != nil {
		return err
	}
	return backToUser(w, r, id, "group-joined")
}

func (h *Handler) leaveGroupPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := h.removeMember(r, p, r.PathValue("groupID"), id); err != nil {
		return err
	}
	return backToUser(w, r, id, "group-left")
}
