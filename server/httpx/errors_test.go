package httpx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/keygate/keygate/server/httpx"
)

// jsonRenderer stands in for an API's injected renderer.
func jsonRenderer(w http.ResponseWriter, r *http.Request, status int, public string) {
	httpx.WriteJSON(w, status, map[string]string{"error": public})
}

func TestAdapt(t *testing.T) {
	cause := errors.New("SECRET: row 17 locked in table sessions")
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantPublic string
		wantLog    []string // substrings of the log output
		wantNoLog  bool
	}{
		{"a nil error writes nothing more", nil, 200, "", nil, true},
		{"an *Error shows its status and public message", httpx.Errorf(http.StatusForbidden, "Not allowed", cause), 403, "Not allowed",
			[]string{`"level":"INFO"`, `"status":403`, "row 17", `"request_id":"rid-a"`}, false},
		{"a wrapped *Error is still found", fmt.Errorf("loading: %w", httpx.Errorf(http.StatusNotFound, "No such client", cause)), 404, "No such client",
			[]string{`"status":404`}, false},
		{"an *Error without a cause at 4xx is not logged at Info", httpx.Errorf(http.StatusBadRequest, "Bad input", nil), 400, "Bad input", nil, true},
		{"a 5xx *Error is logged at Error", httpx.Errorf(http.StatusServiceUnavailable, "Try later", cause), 503, "Try later",
			[]string{`"level":"ERROR"`, "row 17"}, false},
		{"an *Error with an empty public message shows the status text", httpx.Errorf(http.StatusConflict, "", nil), 409, "Conflict", nil, true},
		{"an *Error with a non-error status becomes a 500", httpx.Errorf(http.StatusOK, "fine?", cause), 500, "fine?", []string{`"level":"ERROR"`}, false},
		{"a plain error becomes a generic 500 and is logged with the request id", cause, 500, "Something went wrong",
			[]string{`"level":"ERROR"`, "row 17", `"request_id":"rid-a"`, `"path":"/x"`}, false},
		{"a body over the limit becomes 413", fmt.Errorf("decode: %w", &http.MaxBytesError{Limit: 10}), 413, "Request body too large", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			h := httpx.Chain(httpx.Adapt(jsonRenderer, logger, func(w http.ResponseWriter, r *http.Request) error {
				return tt.err
			}), httpx.RequestID)
			req := httptest.NewRequest("GET", "/x?token=SECRETQ", nil)
			req.Header.Set("X-Request-Id", "rid-a")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantPublic != "" {
				var body map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
					t.Fatalf("body %q: %v", rec.Body.String(), err)
				}
				if body["error"] != tt.wantPublic {
					t.Errorf("public = %q, want %q", body["error"], tt.wantPublic)
				}
			}
			if strings.Contains(rec.Body.String(), "SECRET") {
				t.Errorf("the hidden cause leaked into the response: %s", rec.Body.String())
			}
			if strings.Contains(logs.String(), "SECRETQ") {
				t.Errorf("the query string reached the log: %s", logs.String())
			}
			if tt.wantNoLog && logs.Len() != 0 {
				t.Errorf("unexpected log: %s", logs.String())
			}
			for _, want := range tt.wantLog {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("log lacks %s: %s", want, logs.String())
				}
			}
		})
	}

	t.Run("an error after the response started is logged but not rendered", func(t *testing.T) {
		var logs bytes.Buffer
		h := httpx.Chain(httpx.Adapt(jsonRenderer, slog.New(slog.NewJSONHandler(&logs, nil)), func(w http.ResponseWriter, r *http.Request) error {
			_, _ = w.Write([]byte("partial"))
			return errors.New("late")
		}), httpx.AccessLog(slog.New(slog.DiscardHandler)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 200 || rec.Body.String() != "partial" {
			t.Fatalf("got %d %q", rec.Code, rec.Body.String())
		}
		if !strings.Contains(logs.String(), "after writing") {
			t.Errorf("log: %s", logs.String())
		}
	})
	t.Run("a nil renderer writes plain text", func(t *testing.T) {
		h := httpx.Adapt(nil, slog.New(slog.DiscardHandler), func(http.ResponseWriter, *http.Request) error {
			return httpx.Errorf(http.StatusUnauthorized, "Sign in first", nil)
		})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 401 || strings.TrimSpace(rec.Body.String()) != "Sign in first" ||
			!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("got %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
		}
	})
}

func TestError(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	e := httpx.Errorf(http.StatusBadRequest, "Bad request body", cause)
	t.Run("Error names the status, the public message and the cause", func(t *testing.T) {
		if got := e.Error(); got != "400 Bad request body: unexpected EOF" {
			t.Fatalf("Error() = %q", got)
		}
	})
	t.Run("Unwrap exposes the cause to errors.Is", func(t *testing.T) {
		if !errors.Is(e, io.ErrUnexpectedEOF) {
			t.Fatal("errors.Is failed")
		}
	})
	t.Run("without a cause Error is the status and public message", func(t *testing.T) {
		if got := httpx.Errorf(404, "Not found", nil).Error(); got != "404 Not found" {
			t.Fatalf("Error() = %q", got)
		}
	})
}

func TestWriteJSON(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		v          any
		wantStatus int
		wantBody   string
	}{
		{"a value is written with its status", 201, map[string]int{"n": 1}, 201, `{"n":1}`},
		{"a value that cannot be encoded becomes a clean 500", 200, math.Inf(1), 500, `{"error":"server_error"}`},
		{"markup is escaped as json.Marshal escapes it", 200, "<a>&", 200, `"\u003ca\u003e\u0026"`},
		{"a large body", 200, strings.Repeat("x", 100<<10), 200, `"` + strings.Repeat("x", 100<<10) + `"`},
		{"a short body after a large one is only itself", 200, []int{1}, 200, `[1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpx.WriteJSON(rec, tt.status, tt.v)
			if rec.Code != tt.wantStatus || rec.Body.String() != tt.wantBody+"\n" {
				t.Fatalf("got %d %q", rec.Code, rec.Body.String())
			}
			if rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" ||
				rec.Header().Get("Content-Length") != strconv.Itoa(rec.Body.Len()) {
				t.Errorf("headers %v", rec.Header())
			}
		})
	}
}

// Bodies are encoded in buffers that later responses reuse: concurrent
// responses each get their own body, whole.
func TestWriteJSONConcurrently(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			want := strings.Repeat(strconv.Itoa(i), 1+i*1000)
			for range 200 {
				rec := httptest.NewRecorder()
				httpx.WriteJSON(rec, http.StatusOK, want)
				if rec.Body.String() != `"`+want+`"`+"\n" {
					t.Errorf("body %.40q…, want %.40q…", rec.Body.String(), want)
					return
				}
			}
		})
	}
	wg.Wait()
}

type databaseDown struct{}

func (databaseDown) Error() string     { return "the database is down" }
func (databaseDown) Unavailable() bool { return true }

// An error that says a dependency is unavailable is a 503 to retry, with
// Retry-After, not a 500; its text is never shown.
func TestAdaptAnswersUnavailableWith503(t *testing.T) {
	h := httpx.Adapt(nil, slog.New(slog.DiscardHandler), func(http.ResponseWriter, *http.Request) error {
		return fmt.Errorf("load user: %w", databaseDown{})
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/login", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
		!strings.Contains(w.Body.String(), "Try again") || strings.Contains(w.Body.String(), "down") {
		t.Errorf("%d %q %q", w.Code, w.Header().Get("Retry-After"), w.Body.String())
	}
}

func TestAppendJSONStringAsEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted"`, `back\slash`, "<a href='x'>&amp;</a>", "tab\tnew\nline\x00",
		"Zoë ☃ 𝄞", "line\u2028sep\u2029", "bad \xff utf-8", "\x7f"} {
		want, _ := json.Marshal(s)
		if got := httpx.AppendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendJSONString(%q) = %s, want %s", s, got[1:], want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("<&>\"\\\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := httpx.AppendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("AppendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

// appender writes its own JSON, or fails.
type appender struct {
	json string
	err  error
}

func (a appender) AppendJSON(b []byte) ([]byte, error) { return append(b, a.json...), a.err }

func TestWriteJSONOfAnAppender(t *testing.T) {
	rec := httptest.NewRecorder()
	httpx.WriteJSON(rec, http.StatusOK, appender{json: `{"a":1}`})
	if rec.Code != http.StatusOK || rec.Body.String() != "{\"a\":1}\n" || rec.Header().Get("Content-Length") != "8" {
		t.Errorf("got %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	rec = httptest.NewRecorder()
	httpx.WriteJSON(rec, http.StatusOK, appender{json: `{"half`, err: errors.New("no")})
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != "{\"error\":\"server_error\"}\n" {
		t.Errorf("a failing appender: %d %q", rec.Code, rec.Body.String())
	}
}
