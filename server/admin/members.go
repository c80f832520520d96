package admin

import (
	"net/http"
	"strings"

	"github.com/keygate/keygate/server/httpx"
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

func (h *Handler) addMembersPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	emails := emailList(r.PostFormValue("emails"))
	if len(emails) == 0 {
		// An unknown group is not found, whatever the form says.
		if _, err := h.getGroup(r.Context(), id); err != nil {
			return err
		}
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
	if err := h.manager(r, p).RemoveMember(r.Context(), id, r.PathValue("userID")); err != nil {
		return err
	}
	return backToGroup(w, r, id, "member-removed")
}

func (h *Handler) joinGroupPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	name := strings.TrimSpace(r.PostFormValue("group"))
	if name == "" {
		// An unknown user is not found, whatever the form says.
		if err := h.userExists(r.Context(), id); err != nil {
			return err
		}
		return httpx.Errorf(http.StatusBadRequest, "Choose a group.", nil)
	}
	if err := h.manager(r, p).JoinGroup(r.Context(), id, name); err != nil {
		return err
	}
	return backToUser(w, r, id, "group-joined")
}

func (h *Handler) leaveGroupPage(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := confirmed(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := h.manager(r, p).RemoveMember(r.Context(), r.PathValue("groupID"), id); err != nil {
		return err
	}
	return backToUser(w, r, id, "group-left")
}
