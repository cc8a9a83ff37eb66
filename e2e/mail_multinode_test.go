package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/testenv"
)

// TestMailRelayOutageTwoNodes: two nodes on one PostgreSQL database send
// through one relay, which is down while people sign up and ask for a
// reset on either node. Nothing is lost: once the relay is back, every
// mail arrives, once, and a link mailed by one node works on the other.
func TestMailRelayOutageTwoNodes(t *testing.T) {
	dsn, schema := testenv.PostgresSchema(t)
	relay := mailtest.Start(t)
	relay.Stop()
	c := &clock{}
	var nodes []*env
	var issuer string
	for i := range 2 {
		store, err := postgres.Open(context.Background(), dsn, postgres.Options{SearchPath: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		l := listen(t)
		if i == 0 {
			issuer = "http://" + l.Addr().String()
		}
		nodes = append(nodes, startNode(t, store, l, issuer, c, func(cfg *config.Config) {
			cfg.Signup = "open"
			cfg.MailRelay = "smtp+insecure://" + relay.Addr()
		}))
	}
	people := []string{"hala", "omar", "zaid"}
	for i, name := range people {
		p := nodes[i%2].browser().signup("/signup", url.Values{"name": {name}, "email": {name + "@example.net"}, "username": {name},
			"password": {"correct staple battery horse"}})
		wantStatus(t, p.Status, 303, "sign-up of "+name, p.Body)
	}
	askReset(nodes[1], userName)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(nodes[0].Logs.String()+nodes[1].Logs.String(), "mail: delivery failed") {
		if time.Now().After(deadline) {
			t.Fatal("no delivery was tried while the relay was down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	relay.Restart()
	c.Advance(11 * time.Minute) // past the longest backoff
	for _, name := range people {
		relay.Wait(t, 15*time.Second, mailtest.To(name+"@example.net"))
	}
	reset := relay.Wait(t, 15*time.Second, mailtest.To("amal@example.com"))
	time.Sleep(3 * time.Second) // both senders poll every second: a double would show
	for _, addr := range []string{"hala@example.net", "omar@example.net", "zaid@example.net", "amal@example.com"} {
		if n := mailsTo(relay, addr); n != 1 {
			t.Fatalf("%s got %d mails, want 1", addr, n)
		}
	}
	// hala signed up on node 1; her link works on node 2.
	link := linkIn(t, relay.Wait(t, time.Second, mailtest.To("hala@example.net")), "/verify")
	u, _ := url.Parse(link)
	if p := nodes[1].browser().get("/verify?" + u.RawQuery); p.Status != 200 {
		t.Fatalf("verify on the other node: %d %s", p.Status, p.Body)
	}
	if p := nodes[0].browser().get(linkIn(t, reset, "/reset/confirm")); p.Status != 200 {
		t.Fatalf("reset link on node 1: %d", p.Status)
	}
}
