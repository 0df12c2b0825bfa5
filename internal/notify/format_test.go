package notify

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var when = time.Date(2026, 12, 5, 21, 0, 0, 0, time.FixedZone("CET", 3600))

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    Notification
		want string
	}{
		{"node step", Notification{Node: "n1", Policy: "maintenance", Reason: "Cordoned", Type: "Normal", Message: "cordoned for policy maintenance"},
			"Cordoned: node n1, policy maintenance: cordoned for policy maintenance"},
		{"with cluster, warning", Notification{Cluster: "prod", Node: "n1", Policy: "p", Reason: "DrainFailed", Type: "Warning", Message: "blocked by\n  pdb web"},
			"[prod] ⚠ DrainFailed: node n1, policy p: blocked by pdb web"},
		{"policy step", Notification{Policy: "p", Reason: "CircuitOpen", Type: "Warning", Message: "4 of 6 triggered"},
			"⚠ CircuitOpen: policy p: 4 of 6 triggered"},
		{"no message", Notification{Policy: "p", Node: "n", Reason: "Released", Type: "Normal"},
			"Released: node n, policy p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Summary(tc.n); got != tc.want {
				t.Errorf("Summary = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBody(t *testing.T) {
	n := Notification{Receiver: "ops", Cluster: "prod", Node: "n1", Policy: "maintenance", Reason: "DrainFailed",
		Type: "Warning", Message: "drain timed out", Time: when}
	policyStep := Notification{Policy: "maintenance", Reason: "CircuitClosed", Type: "Normal", Message: "resumes", Time: when}
	for _, tc := range []struct {
		name, typ string
		n         Notification
		want      string
	}{
		{"webhook", TypeWebhook, n,
			`{"cluster":"prod","node":"n1","policy":"maintenance","reason":"DrainFailed","type":"Warning","message":"drain timed out","time":"2026-12-05T20:00:00Z"}`},
		{"webhook, policy step, no cluster", TypeWebhook, policyStep,
			`{"policy":"maintenance","reason":"CircuitClosed","type":"Normal","message":"resumes","time":"2026-12-05T20:00:00Z"}`},
		{"slack", TypeSlack, n, `{
			"text": "[prod] ⚠ DrainFailed: node n1, policy maintenance: drain timed out",
			"attachments": [{
				"color": "warning",
				"fallback": "[prod] ⚠ DrainFailed: node n1, policy maintenance: drain timed out",
				"text": "drain timed out",
				"fields": [
					{"title": "Cluster", "value": "prod", "short": true},
					{"title": "Node", "value": "n1", "short": true},
					{"title": "Policy", "value": "maintenance", "short": true},
					{"title": "Reason", "value": "DrainFailed", "short": true},
					{"title": "Type", "value": "Warning", "short": true},
					{"title": "Time", "value": "2026-12-05T20:00:00Z", "short": true}
				]
			}]}`},
		{"slack, policy step", TypeSlack, policyStep, `{
			"text": "CircuitClosed: policy maintenance: resumes",
			"attachments": [{
				"color": "good",
				"fallback": "CircuitClosed: policy maintenance: resumes",
				"text": "resumes",
				"fields": [
					{"title": "Policy", "value": "maintenance", "short": true},
					{"title": "Reason", "value": "CircuitClosed", "short": true},
					{"title": "Type", "value": "Normal", "short": true},
					{"title": "Time", "value": "2026-12-05T20:00:00Z", "short": true}
				]
			}]}`},
		{"teams", TypeTeams, n, `{
			"type": "message",
			"attachments": [{
				"contentType": "application/vnd.microsoft.card.adaptive",
				"contentUrl": null,
				"content": {
					"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
					"type": "AdaptiveCard",
					"version": "1.2",
					"body": [
						{"type": "TextBlock", "text": "[prod] ⚠ DrainFailed: node n1, policy maintenance: drain timed out", "wrap": true, "weight": "Bolder", "size": "Medium", "color": "Warning"},
						{"type": "TextBlock", "text": "drain timed out", "wrap": true},
						{"type": "FactSet", "facts": [
							{"title": "Cluster", "value": "prod"},
							{"title": "Node", "value": "n1"},
							{"title": "Policy", "value": "maintenance"},
							{"title": "Reason", "value": "DrainFailed"},
							{"title": "Type", "value": "Warning"},
							{"title": "Time", "value": "2026-12-05T20:00:00Z"}
						]}
					]
				}
			}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Body(tc.typ, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			var g, w any
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("body is not JSON: %v\n%s", err, got)
			}
			if err := json.Unmarshal([]byte(tc.want), &w); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := Body("email", n); err == nil {
		t.Error("Body accepted receiver type email")
	}
}

func TestParseReceiver(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       Receiver
		wantErr    bool
	}{
		{"yaml", "type: slack\nurl: https://hooks.example.com/services/T/B/X\n", Receiver{TypeSlack, "https://hooks.example.com/services/T/B/X"}, false},
		{"json", `{"type":"teams","url":"https://example.com/workflows/1"}`, Receiver{TypeTeams, "https://example.com/workflows/1"}, false},
		{"http webhook", `{"type":"webhook","url":"http://receiver.ops.svc:8080/hook"}`, Receiver{TypeWebhook, "http://receiver.ops.svc:8080/hook"}, false},
		{"unknown type", `{"type":"email","url":"https://example.com"}`, Receiver{}, true},
		{"no type", `{"url":"https://example.com"}`, Receiver{}, true},
		{"no url", `{"type":"slack"}`, Receiver{}, true},
		{"not http", `{"type":"slack","url":"ftp://example.com/x"}`, Receiver{}, true},
		{"unknown field", `{"type":"slack","url":"https://example.com","channel":"#ops"}`, Receiver{}, true},
		{"not yaml", `{{`, Receiver{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseReceiver([]byte(tc.data))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
