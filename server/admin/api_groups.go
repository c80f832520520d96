package admin

import (
	"net/http"
	"time"

	"github.com/keygate/keygate/server/httpx"
	"github.com/keygate/keygate/storage"
)

// The groups of the JSON API.

type groupJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	MinACR      string    `json:"min_acr"` // "": none beyond each app's
	MemberCount int       `json:"member_count"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func toGroupJSON(g storage.Group, members int) groupJSON {
	return groupJSON{ID: g.ID, Name: g.Name, Description: g.Description, MinACR: g.MinACR, MemberCount: members,
		CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC()}
}

// memberJSON is a member as a group lists them.
type memberJSON struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Name      string `json:"name,omitempty"`
	Role      string `json:"role"`
	Suspended bool   `json:"suspended"`
}

// groupSpecJSON is the body of POST and PUT groups.
type groupSpecJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	MinACR      string `json:"min_acr"`
}

func (h *Handler) apiListGroups(w http.ResponseWriter, r *http.Request, _ *principal) error {
	groups, err := h.d.Store.ListGroups(r.Context())
	if err != nil {
		return err
	}
	counts, err := h.d.Store.CountGroupMembers(r.Context())
	if err != nil {
		return err
	}
	out := []groupJSON{}
	for _, g := range groups {
		out = append(out, toGroupJSON(g, counts[g.ID]))
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"groups": out})
	return nil
}

// writeGroup answers the group with its members.
func (h *Handler) writeGroup(w http.ResponseWriter, r *http.Request, status int, id string) error {
	g, err := h.getGroup(r.Context(), id)
	if err != nil {
		return err
	}
	members, err := h.d.Store.ListGroupMembers(r.Context(), id)
	if err != nil {
		return err
	}
	out := struct {
		Group   groupJSON    `json:"group"`
		Members []memberJSON `json:"members"`
	}{Group: toGroupJSON(g, len(members)), Members: []memberJSON{}}
	for _, u := range members {
		out.Members = append(out.Members, memberJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Suspended: u.Suspended()})
	}
	httpx.WriteJSON(w, status, out)
	return nil
}

func (h *Handler) apiCreateGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in groupSpecJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	spec, err := h.groupSpec(r.Context(), "", in.Name, in.Description, in.MinACR)
	if err != nil {
		return err
	}
	g, err := h.manager(r, p).CreateGroup(r.Context(), spec)
	if err != nil {
		return err
	}
	return h.writeGroup(w, r, http.StatusCreated, g.ID)
}

func (h *Handler) apiGetGroup(w http.ResponseWriter, r *http.Request, _ *principal) error {
	return h.writeGroup(w, r, http.StatusOK, r.PathValue("id"))
}

// apiUpdateGroup replaces the group's name, description and minimum acr.
func (h *Handler) apiUpdateGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in groupSpecJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := h.getGroup(r.Context(), id); err != nil {
		return err
	}
	spec, err := h.groupSpec(r.Context(), id, in.Name, in.Description, in.MinACR)
	if err != nil {
		return err
	}
	if err := h.manager(r, p).UpdateGroup(r.Context(), id, spec); err != nil {
		return err
	}
	return h.writeGroup(w, r, http.StatusOK, id)
}

func (h *Handler) apiDeleteGroup(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := h.manager(r, p).DeleteGroup(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiAddMembers adds the users with these emails: {"emails": [...]}. One
// unknown email adds nobody.
func (h *Handler) apiAddMembers(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in struct {
		Emails []string `json:"emails"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Emails) == 0 {
		return apiErr(http.StatusBadRequest, "invalid_request", `Send {"emails": ["..."]} with at least one email.`)
	}
	id := r.PathValue("id")
	if err := h.manager(r, p).AddMembers(r.Context(), id, in.Emails); err != nil {
		return err
	}
	return h.writeGroup(w, r, http.StatusOK, id)
}

// apiRemoveMember ends one membership; the apps only the group allowed
// the user lose them at once.
func (h *Handler) apiRemoveMember(w http.ResponseWriter, r *http.Request, p *principal) error {
	if err := h.manager(r, p).RemoveMember(r.Context(), r.PathValue("id"), r.PathValue("userID")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
