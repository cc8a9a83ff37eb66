package security

import (
	"net/http"

	"github.com/bawwab/bawwab/internal/storage"
)

// passkeys fills in the user's passkeys when they are offered.
func (h *Handler) passkeys(r *http.Request, u *storage.User, d *pageData) error {
	return nil
}
