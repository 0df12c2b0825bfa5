// Package notify sends the controller's steps (cordon, drain, repair,
// release, circuit breaker) to chat and HTTP receivers: a generic JSON
// webhook, Slack-compatible and Microsoft Teams (Workflows) incoming
// webhooks. Receivers live in one Secret; policies name them. Sending never
// holds up the controller: Enqueue only queues, and one worker sends with
// retries (docs/operations.md, "Notifications").
package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Receiver types, the value of a receiver's `type`.
const (
	TypeWebhook = "webhook"
	TypeSlack   = "slack"
	TypeTeams   = "teams"
)

// Notification is one step to tell one receiver about.
type Notification struct {
	// Receiver names the receiver (a key of the notifications Secret).
	Receiver string
	// Cluster is the configured cluster name; empty when none is.
	Cluster string
	// Node is empty for a policy's own steps (CircuitOpen, CircuitClosed).
	Node   string
	Policy string
	// Reason is the Event's reason (Cordoned, DrainStarted, ...) and Type
	// its type (Normal, Warning).
	Reason  string
	Type    string
	Message string
	Time    time.Time
}

// WebhookPayload is the JSON body a receiver of type webhook gets
// (docs/operations.md documents it; keep the two in step).
type WebhookPayload struct {
	// Cluster is omitted when no cluster name is configured.
	Cluster string `json:"cluster,omitempty"`
	// Node is omitted for a policy's own steps.
	Node    string `json:"node,omitempty"`
	Policy  string `json:"policy"`
	Reason  string `json:"reason"`
	Type    string `json:"type"`
	Message string `json:"message"`
	// Time is when the controller carried the step out, RFC 3339 in UTC.
	Time string `json:"time"`
}

// Summary is a notification in one readable line, e.g.
// "[prod] Cordoned: node n1, policy maintenance: <message>".
func Summary(n Notification) string {
	var b strings.Builder
	if n.Cluster != "" {
		fmt.Fprintf(&b, "[%s] ", n.Cluster)
	}
	if n.Type == "Warning" {
		b.WriteString("⚠ ")
	}
	b.WriteString(n.Reason)
	b.WriteString(":")
	if n.Node != "" {
		fmt.Fprintf(&b, " node %s,", n.Node)
	}
	fmt.Fprintf(&b, " policy %s", n.Policy)
	if m := oneLine(n.Message); m != "" {
		b.WriteString(": ")
		b.WriteString(m)
	}
	return b.String()
}

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// fields are the facts Slack and Teams show under the summary, in order.
func fields(n Notification) [][2]string {
	var out [][2]string
	if n.Cluster != "" {
		out = append(out, [2]string{"Cluster", n.Cluster})
	}
	if n.Node != "" {
		out = append(out, [2]string{"Node", n.Node})
	}
	out = append(out,
		[2]string{"Policy", n.Policy},
		[2]string{"Reason", n.Reason},
		[2]string{"Type", n.Type},
		[2]string{"Time", stamp(n.Time)})
	return out
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Body is the JSON a receiver of the given type gets for n.
func Body(receiverType string, n Notification) ([]byte, error) {
	switch receiverType {
	case TypeWebhook:
		return json.Marshal(WebhookPayload{
			Cluster: n.Cluster, Node: n.Node, Policy: n.Policy, Reason: n.Reason,
			Type: n.Type, Message: n.Message, Time: stamp(n.Time),
		})
	case TypeSlack:
		return json.Marshal(slackBody(n))
	case TypeTeams:
		return json.Marshal(teamsBody(n))
	}
	return nil, fmt.Errorf("unknown receiver type %q (want %s, %s or %s)", receiverType, TypeWebhook, TypeSlack, TypeTeams)
}

// slackMessage is a Slack incoming webhook's body: text is what every
// Slack-compatible receiver (Mattermost, Rocket.Chat) shows; the legacy
// attachment's fields add the facts, its color the severity.
type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color    string       `json:"color"`
	Fallback string       `json:"fallback"`
	Text     string       `json:"text,omitempty"`
	Fields   []slackField `json:"fields"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

func slackBody(n Notification) slackMessage {
	a := slackAttachment{Color: "good", Fallback: Summary(n), Text: oneLine(n.Message)}
	if n.Type == "Warning" {
		a.Color = "warning"
	}
	for _, f := range fields(n) {
		a.Fields = append(a.Fields, slackField{Title: f[0], Value: f[1], Short: true})
	}
	return slackMessage{Text: Summary(n), Attachments: []slackAttachment{a}}
}

// teamsMessage is what a Teams Workflows ("Post to a channel when a
// webhook request is received") webhook takes: a message whose one
// attachment is an Adaptive Card.
type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string `json:"$schema"`
	Type    string `json:"type"`
	Version string `json:"version"`
	Body    []any  `json:"body"`
}

type textBlock struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Wrap   bool   `json:"wrap"`
	Weight string `json:"weight,omitempty"`
	Size   string `json:"size,omitempty"`
	Color  string `json:"color,omitempty"`
}

type factSet struct {
	Type  string `json:"type"`
	Facts []fact `json:"facts"`
}

type fact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

func teamsBody(n Notification) teamsMessage {
	title := textBlock{Type: "TextBlock", Text: Summary(n), Wrap: true, Weight: "Bolder", Size: "Medium"}
	if n.Type == "Warning" {
		title.Color = "Warning"
	}
	facts := factSet{Type: "FactSet"}
	for _, f := range fields(n) {
		facts.Facts = append(facts.Facts, fact{Title: f[0], Value: f[1]})
	}
	body := []any{title}
	if m := oneLine(n.Message); m != "" {
		body = append(body, textBlock{Type: "TextBlock", Text: m, Wrap: true})
	}
	body = append(body, facts)
	return teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content: adaptiveCard{
				Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
				Type:    "AdaptiveCard",
				Version: "1.2",
				Body:    body,
			},
		}},
	}
}
