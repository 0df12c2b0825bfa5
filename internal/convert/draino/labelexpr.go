package draino

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// This file turns Draino's --node-label-expr (an expr-lang boolean over
// metadata.labels) into label selector requirements, for the subset of the
// language a LabelSelector can say:
//
//	metadata.labels.k == 'v'        metadata.labels['k'] == 'v'   'v' == metadata.labels.k
//	metadata.labels.k != 'v'        NotIn [v]
//	metadata.labels.k in ['a','b']  In [a b]
//	metadata.labels.k not in [...]  NotIn [...]
//	'k' in metadata.labels          Exists (what Draino's own --node-label conversion writes)
//	'k' not in metadata.labels      DoesNotExist
//	!(one of the above)             its negation
//	A && B, A and B                 both
//	A || B                          only when A and B are In/== on the same key (In [union])
//
// Anything else (other operators, functions, numbers, a disjunction over
// different keys, fields other than metadata.labels) is reported as not
// expressible; the caller never guesses a broader selector.

// selectorFromExpr parses src and returns the requirements whose conjunction
// selects exactly the nodes the expression matches, or an error saying why
// that is not possible.
func selectorFromExpr(src string) ([]metav1.LabelSelectorRequirement, error) {
	toks, err := lexExpr(src)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, fmt.Errorf("unexpected %s at offset %d", t, t.pos)
	}
	return toRequirements(n)
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokOp // == != && || ! ( ) [ ] , . and other punctuation
)

type token struct {
	kind tokKind
	text string // identifier, operator, or the unquoted string value
	pos  int
}

func (t token) String() string {
	switch t.kind {
	case tokEOF:
		return "end of expression"
	case tokString:
		return fmt.Sprintf("string %q", t.text)
	default:
		return fmt.Sprintf("%q", t.text)
	}
}

func lexExpr(src string) ([]token, error) {
	var out []token
	rs := []rune(src)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '\'' || r == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(rs) && rs[j] != r; j++ {
				if rs[j] == '\\' && j+1 < len(rs) {
					j++
					switch rs[j] {
					case 'n':
						b.WriteRune('\n')
					case 't':
						b.WriteRune('\t')
					default:
						b.WriteRune(rs[j])
					}
					continue
				}
				b.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unterminated string starting at offset %d", i)
			}
			out = append(out, token{tokString, b.String(), i})
			i = j + 1
		case r == '_' || unicode.IsLetter(r):
			j := i
			for j < len(rs) && (rs[j] == '_' || unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
				j++
			}
			out = append(out, token{tokIdent, string(rs[i:j]), i})
			i = j
		case unicode.IsDigit(r):
			j := i
			for j < len(rs) && (unicode.IsDigit(rs[j]) || rs[j] == '.' || rs[j] == '_') {
				j++
			}
			out = append(out, token{tokNumber, string(rs[i:j]), i})
			i = j
		default:
			two := ""
			if i+1 < len(rs) {
				two = string(rs[i : i+2])
			}
			switch two {
			case "==", "!=", "&&", "||", "<=", ">=", "?.", "??":
				out = append(out, token{tokOp, two, i})
				i += 2
				continue
			}
			out = append(out, token{tokOp, string(r), i})
			i++
		}
	}
	return append(out, token{kind: tokEOF, pos: len(rs)}), nil
}

// exprNode is the parsed expression: a logical node (and, or, not) or a
// comparison between two operands.
type exprNode struct {
	op          string // "and", "or", "not", "==", "!=", "in", "not in"
	left, right *exprNode
	// operand leaves (op == ""): exactly one of these is set.
	labelKey  *string  // metadata.labels.<key>
	labelsMap bool     // metadata.labels itself
	str       *string  // a string literal
	list      []string // a list of string literals (non-nil, maybe empty)
}

type exprParser struct {
	toks []token
	i    int
}

func (p *exprParser) peek() token { return p.toks[p.i] }
func (p *exprParser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *exprParser) isOp(texts ...string) bool {
	t := p.peek()
	return (t.kind == tokOp || t.kind == tokIdent) && slices.Contains(texts, t.text)
}

func (p *exprParser) expectOp(text string) error {
	if t := p.next(); t.kind != tokOp || t.text != text {
		return fmt.Errorf("expected %q, found %s at offset %d", text, t, t.pos)
	}
	return nil
}

func (p *exprParser) parseOr() (*exprNode, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isOp("||", "or") {
		p.next()
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = &exprNode{op: "or", left: left, right: right}
	}
	return left, nil
}

func (p *exprParser) parseAnd() (*exprNode, error) {
	left, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.isOp("&&", "and") {
		p.next()
		right, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		left = &exprNode{op: "and", left: left, right: right}
	}
	return left, nil
}

// parseUnary parses a negation or a comparison. As in expr-lang, ! and not
// bind tighter than comparisons: !(a == 'x') negates the comparison, while
// !a == 'x' compares a negated operand (and is not expressible).
func (p *exprParser) parseUnary() (*exprNode, error) {
	left, err := p.parseNegatable()
	if err != nil {
		return nil, err
	}
	var op string
	switch {
	case p.isOp("==", "!="):
		op = p.next().text
	case p.isOp("in"):
		p.next()
		op = "in"
	case p.isOp("not") && p.toks[p.i+1].kind == tokIdent && p.toks[p.i+1].text == "in":
		p.i += 2
		op = "not in"
	default:
		t := p.peek()
		if t.kind == tokOp && !slices.Contains([]string{")", "&&", "||"}, t.text) ||
			t.kind == tokIdent && t.text != "and" && t.text != "or" {
			return nil, fmt.Errorf("operator %s at offset %d has no label selector equivalent", t, t.pos)
		}
		return left, nil
	}
	right, err := p.parseNegatable()
	if err != nil {
		return nil, err
	}
	return &exprNode{op: op, left: left, right: right}, nil
}

func (p *exprParser) parseNegatable() (*exprNode, error) {
	if p.isOp("!", "not") {
		p.next()
		inner, err := p.parseNegatable()
		if err != nil {
			return nil, err
		}
		return &exprNode{op: "not", left: inner}, nil
	}
	return p.parseOperand()
}

func (p *exprParser) parseOperand() (*exprNode, error) {
	t := p.next()
	switch {
	case t.kind == tokOp && t.text == "(":
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		return n, p.expectOp(")")
	case t.kind == tokString:
		s := t.text
		return &exprNode{str: &s}, nil
	case t.kind == tokOp && t.text == "[":
		list := []string{}
		for !p.isOp("]") {
			e := p.next()
			if e.kind != tokString {
				return nil, fmt.Errorf("list elements must be strings (label values), found %s at offset %d", e, e.pos)
			}
			list = append(list, e.text)
			if !p.isOp(",") {
				break
			}
			p.next()
		}
		return &exprNode{list: list}, p.expectOp("]")
	case t.kind == tokIdent && t.text == "metadata":
		if err := p.expectOp("."); err != nil {
			return nil, err
		}
		if l := p.next(); l.kind != tokIdent || l.text != "labels" {
			return nil, fmt.Errorf("only metadata.labels is supported, found metadata.%s at offset %d", l.text, l.pos)
		}
		switch {
		case p.isOp("."):
			p.next()
			k := p.next()
			if k.kind != tokIdent {
				return nil, fmt.Errorf("expected a label name after metadata.labels., found %s at offset %d", k, k.pos)
			}
			key := k.text
			return &exprNode{labelKey: &key}, nil
		case p.isOp("["):
			p.next()
			k := p.next()
			if k.kind != tokString {
				return nil, fmt.Errorf("expected a quoted label name in metadata.labels[...], found %s at offset %d", k, k.pos)
			}
			key := k.text
			return &exprNode{labelKey: &key}, p.expectOp("]")
		}
		return &exprNode{labelsMap: true}, nil
	case t.kind == tokNumber:
		return nil, fmt.Errorf("number %s at offset %d: label values are strings, so Draino never matched it", t.text, t.pos)
	case t.kind == tokIdent:
		return nil, fmt.Errorf("%q at offset %d has no label selector equivalent (only metadata.labels and string literals are)", t.text, t.pos)
	case t.kind == tokEOF:
		return nil, fmt.Errorf("unexpected end of expression")
	}
	return nil, fmt.Errorf("operator %s at offset %d has no label selector equivalent", t, t.pos)
}

// toRequirements turns a parsed expression into the requirements of a
// conjunction.
func toRequirements(n *exprNode) ([]metav1.LabelSelectorRequirement, error) {
	switch n.op {
	case "and":
		l, err := toRequirements(n.left)
		if err != nil {
			return nil, err
		}
		r, err := toRequirements(n.right)
		if err != nil {
			return nil, err
		}
		return append(l, r...), nil
	case "or":
		return disjunction(n)
	case "not":
		inner, err := toRequirements(n.left)
		if err != nil {
			return nil, err
		}
		if len(inner) != 1 {
			return nil, fmt.Errorf("a negated conjunction (!(A && B)) is a disjunction, which a label selector cannot express")
		}
		neg, err := negate(inner[0])
		if err != nil {
			return nil, err
		}
		return []metav1.LabelSelectorRequirement{neg}, nil
	case "==", "!=", "in", "not in":
		r, err := comparison(n)
		if err != nil {
			return nil, err
		}
		if r == nil { // always true, e.g. "k not in []"
			return nil, nil
		}
		return []metav1.LabelSelectorRequirement{*r}, nil
	case "":
		return nil, fmt.Errorf("a bare value is not a condition on node labels")
	}
	return nil, fmt.Errorf("operator %q has no label selector equivalent", n.op)
}

// disjunction handles A || B || ...: expressible only as one In requirement
// when every branch is an In on the same key.
func disjunction(n *exprNode) ([]metav1.LabelSelectorRequirement, error) {
	var branches []*exprNode
	var flatten func(*exprNode)
	flatten = func(n *exprNode) {
		if n.op == "or" {
			flatten(n.left)
			flatten(n.right)
			return
		}
		branches = append(branches, n)
	}
	flatten(n)
	var key string
	var values []string
	for _, b := range branches {
		reqs, err := toRequirements(b)
		if err != nil {
			return nil, err
		}
		if len(reqs) != 1 || reqs[0].Operator != metav1.LabelSelectorOpIn || (key != "" && reqs[0].Key != key) {
			return nil, fmt.Errorf("a disjunction (||) is expressible only between values of one label (k == 'a' || k == 'b'); write one RemediationPolicy per branch instead")
		}
		key = reqs[0].Key
		for _, v := range reqs[0].Values {
			if !slices.Contains(values, v) {
				values = append(values, v)
			}
		}
	}
	return []metav1.LabelSelectorRequirement{{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}}, nil
}

func negate(r metav1.LabelSelectorRequirement) (metav1.LabelSelectorRequirement, error) {
	switch r.Operator {
	case metav1.LabelSelectorOpIn:
		r.Operator = metav1.LabelSelectorOpNotIn
	case metav1.LabelSelectorOpNotIn:
		r.Operator = metav1.LabelSelectorOpIn
		if len(r.Values) == 0 {
			return r, fmt.Errorf("!(k not in []) never matches a node")
		}
	case metav1.LabelSelectorOpExists:
		r.Operator = metav1.LabelSelectorOpDoesNotExist
	case metav1.LabelSelectorOpDoesNotExist:
		r.Operator = metav1.LabelSelectorOpExists
	}
	return r, nil
}

// comparison converts one comparison. A nil requirement means "always true".
func comparison(n *exprNode) (*metav1.LabelSelectorRequirement, error) {
	l, r := n.left, n.right
	switch n.op {
	case "==", "!=":
		if l.str != nil && r.labelKey != nil {
			l, r = r, l
		}
		if l.labelKey == nil || r.str == nil {
			return nil, fmt.Errorf("%s is expressible only between metadata.labels.<name> and a string", n.op)
		}
		op := metav1.LabelSelectorOpIn
		if n.op == "!=" {
			op = metav1.LabelSelectorOpNotIn
		}
		return requirement(*l.labelKey, op, []string{*r.str})
	case "in", "not in":
		switch {
		case l.str != nil && r.labelsMap:
			op := metav1.LabelSelectorOpExists
			if n.op == "not in" {
				op = metav1.LabelSelectorOpDoesNotExist
			}
			return requirement(*l.str, op, nil)
		case l.labelKey != nil && r.list != nil:
			if n.op == "not in" {
				if len(r.list) == 0 {
					return nil, nil
				}
				return requirement(*l.labelKey, metav1.LabelSelectorOpNotIn, r.list)
			}
			if len(r.list) == 0 {
				return nil, fmt.Errorf("metadata.labels.%s in [] never matches a node", *l.labelKey)
			}
			return requirement(*l.labelKey, metav1.LabelSelectorOpIn, r.list)
		}
		return nil, fmt.Errorf("%s is expressible only as metadata.labels.<name> %s [...] or '<name>' %s metadata.labels", n.op, n.op, n.op)
	}
	return nil, fmt.Errorf("operator %q has no label selector equivalent", n.op)
}

func requirement(key string, op metav1.LabelSelectorOperator, values []string) (*metav1.LabelSelectorRequirement, error) {
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return nil, fmt.Errorf("%q is not a valid label name: %s", key, strings.Join(errs, "; "))
	}
	var vals []string
	for _, v := range values {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("%q is not a valid label value (no node can carry it): %s", v, strings.Join(errs, "; "))
		}
		if !slices.Contains(vals, v) {
			vals = append(vals, v)
		}
	}
	return &metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: vals}, nil
}
