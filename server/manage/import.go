package manage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keygate/keygate/storage"
)

// ImportProblem is what is wrong with one user of an import: Index is the
// user's place in the list given to ImportUsers.
type ImportProblem struct {
	Index   int
	Problem string
}

// ImportError lists every problem of an import that changed nothing.
type ImportError struct{ Problems []ImportProblem }

func (e *ImportError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "user %d: %s", p.Index+1, p.Problem)
	}
	return b.String()
}

// Is makes an ImportError an ErrInvalid: the input is at fault.
func (e *ImportError) Is(target error) bool { return target == ErrInvalid }

// ImportUsers adds many users, each with their groups and enrolment link,
// all in one transaction: if any one is wrong — an address that is not
// one, given twice or taken, a group that does not exist — nothing is
// added, and the error names every wrong one.
func (m *Manager) ImportUsers(ctx context.Context, specs []UserSpec) ([]NewUser, error) {
	var out []NewUser
	err := m.Store.InTx(ctx, func(ctx context.Context) error {
		var problems []ImportProblem
		users := make([]storage.User, len(specs))
		seen := map[string]int{}
		for i, spec := range specs {
			u, err := m.newUser(spec)
			if err != nil {
				problems = append(problems, ImportProblem{i, problemText(err)})
				continue
			}
			if first, ok := seen[u.Email]; ok {
				problems = append(problems, ImportProblem{i, fmt.Sprintf("%s is given twice (first as user %d)", u.Email, first+1)})
				continue
			}
			seen[u.Email] = i
			if _, err := m.Store.GetUserByEmail(ctx, u.Email); err == nil {
				problems = append(problems, ImportProblem{i, fmt.Sprintf("a user with email %s already exists", u.Email)})
				continue
			} else if !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			for _, name := range spec.Groups {
				if _, err := m.Store.GetGroupByName(ctx, strings.TrimSpace(name)); errors.Is(err, storage.ErrNotFound) {
					problems = append(problems, ImportProblem{i, fmt.Sprintf("no group is named %s", name)})
				} else if err != nil {
					return err
				}
			}
			users[i] = u
		}
		if len(problems) > 0 {
			return &ImportError{Problems: problems}
		}
		for i, u := range users {
			nu, err := m.createUser(ctx, u, specs[i].Groups)
			if err != nil {
				return err
			}
			out = append(out, nu)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// problemText is an input error's message without its "invalid input: ".
func problemText(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
}
