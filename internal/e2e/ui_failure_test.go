package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// errorsDrawnJS is true when the 5xx chart draws a point above 0 for the
// failing config: what uPlot was given to draw, not what the page received.
const errorsDrawnJS = `(() => {
	const u = window.kiln.charts.errors5xx;
	if (!u) return false;
	return u.series.some((s, i) => i > 0 && s.label && s.label.startsWith('fail-bad') && u.data[i].some(v => v > 0));
})()`

// The README's failing canary, as the dashboard shows it: the green fleet
// answers only errors for about a second before the alarm rolls it back, and
// is gone by the next snapshot. The 5xx chart draws those errors, on the page
// that watched it live and on a page opened after the rollback, which also
// shows the canary's jump and the rollback on the share chart and the
// timeline. At 1400 and 800 pixels wide, the phase markers' labels do not
// overlap and are not cut, the panels do not overlap, the page does not
// scroll sideways and config names stay on one line.
func TestDashboardShowsTheFailure(t *testing.T) {
	ctx := startBrowser(t)
	pg := browserTab{t: t, ctx: ctx}
	p := startKiln(t, "")
	p.applyYAML(demoYAML("fail", 2))
	p.waitInService("fail", 60*time.Second)
	p.mustCLI("alarms", "put", "fail-5xx", "--metric", "Invocation5XXErrors", "--endpoint", "fail", "--variant", "AllTraffic",
		"--statistic", "Sum", "--period", "1", "--evaluation-periods", "1", "--threshold", "0", "--comparison", "GreaterThanThreshold")

	pg.do("open the endpoint", chromedp.Navigate(p.url+"/ui/endpoints/fail"))
	pg.waitJS("snapshots", 15*time.Second, `window.kiln.snapshots.length >= 2 && window.kiln.charts.errors5xx !== undefined`)
	traffic := startDashboardLoad(p, "fail")
	defer func() {
		if traffic != nil {
			traffic.end()
		}
	}()
	pg.waitJS("invocations on the chart", 20*time.Second,
		`window.kiln.charts.invocations.data.slice(1).some(d => d.some(v => v > 0))`)

	p.mustCLI("deploy", "fail", "--config", "fail-bad", "--canary", "50%", "--bake", "60s", "--alarm", "fail-5xx")
	waitFor(t, 120*time.Second, "the failing canary rolled back", func() bool {
		ep, err := p.client.GetEndpoint(context.Background(), "fail")
		return err == nil && ep.Deployment == nil && ep.EndpointConfigName == "fail-v1" && ep.FailureReason != ""
	})
	// The alarm counted the errors; the metrics store has them.
	pg.waitJS("the failing canary's errors on the 5xx chart of the page that watched", 15*time.Second, errorsDrawnJS)
	pg.waitJS("the failure banner", 10*time.Second, `document.querySelector('#ep-outcome[data-kind="failed"]') !== null`)
	pg.shot("failure-1-live")
	traffic.end()
	traffic = nil

	// A page opened after the rollback shows it all.
	pg.do("open the endpoint again", chromedp.Navigate(p.url+"/ui/endpoints/fail"))
	pg.waitJS("the first snapshot", 15*time.Second, `window.kiln.snapshots.length >= 1 && window.kiln.charts.errors5xx !== undefined`)
	pg.waitJS("the failing canary's errors on the 5xx chart of a page opened after the rollback", 10*time.Second, errorsDrawnJS)
	if !evalJS[bool](pg, `window.kiln.charts.invocations.series.some((s, i) => i > 0 && s.label.startsWith('fail-v1') && window.kiln.charts.invocations.data[i].filter(v => v > 0).length >= 3)`) {
		t.Errorf("a page opened after the rollback does not draw the traffic of the seconds before it opened: %s",
			pg.evalString(`JSON.stringify(window.kiln.charts.invocations.series.map(s => s.label))`))
	}
	if !evalJS[bool](pg, `window.kiln.charts.share.data[2].some(v => v > 0) && window.kiln.charts.share.data[2][window.kiln.charts.share.data[2].length - 1] === 0`) {
		t.Errorf("the share chart of a page opened after the rollback does not show the canary's jump and the drop back: green %s",
			pg.evalString(`JSON.stringify(window.kiln.charts.share.data[2])`))
	}
	pg.waitJS("the rollback on the timeline", 10*time.Second, `document.querySelector('#timeline li[data-phase="RolledBack"]') !== null`)
	pg.waitJS("a marker label for the rollback", 10*time.Second,
		`window.kiln.liveCharts.share.markerLabels.some(m => m.label === 'RolledBack' || m.label === 'RollingBack')`)
	if got := evalJS[string](pg, `(document.getElementById('ep-outcome') || {}).dataset.kind || ''`); got != "failed" {
		t.Errorf("after the failing canary the page's outcome notice is %q, want failed", got)
	}

	// A long reason (a judge's runs to 600 characters) shows its start, with
	// the whole a click away.
	long, err := chromedp.Run(ctx, chromedp.Evaluate[string](`import('/ui/static/js/dom.js').then((m) => {
		const reason = 'Update rolled back because alarm "judge" is in ALARM: ' + 'the new fleet answers worse than the old one; '.repeat(12) + 'END';
		const box = document.createElement('div');
		box.style.width = '700px';
		document.body.append(box);
		box.append(m.outcome({FailureReason: reason, EndpointConfigName: 'fail-v1'}));
		const bad = [];
		const closed = box.innerText;
		if (closed.length > 260 || closed.includes('END')) bad.push('closed, it shows ' + closed.length + ' characters');
		if (!box.querySelector('details') || box.querySelector('details').textContent.indexOf(reason) < 0) bad.push('the whole reason is not in a details element');
		box.querySelector('summary').click();
		if (!box.innerText.includes(reason)) bad.push('opened, it does not show the whole reason');
		box.remove();
		return bad.join('; ');
	})`, chromedp.EvalAwaitPromise))
	if err != nil || long != "" {
		t.Errorf("a 600-character reason: %q %v", long, err)
	}

	for _, width := range []int64{1400, 800} {
		pg.do("resize", chromedp.EmulateViewport(width, 900))
		time.Sleep(1500 * time.Millisecond) // the charts redraw at the new width with the next snapshot
		pg.shot(fmt.Sprintf("failure-layout-%d", width))
		if msg := evalJS[string](pg, layoutProblemsJS); msg != "" {
			t.Errorf("at %d px: %s", width, msg)
		}
	}
	if errs := evalJS[[]string](pg, `window.kiln.errors`); len(errs) > 0 {
		t.Errorf("the page reported errors: %v", errs)
	}
}

// layoutProblemsJS returns "" when the endpoint page is laid out cleanly, or
// what is wrong: marker labels that overlap or leave their plot, panels or
// charts that overlap, a page wider than the window, or a name broken
// across lines.
const layoutProblemsJS = `(() => {
	const bad = [];
	const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
	const labels = window.kiln.liveCharts.share.markerLabels;
	if (labels.length === 0) bad.push('no phase marker label drawn');
	for (let i = 0; i < labels.length; i++) {
		const a = labels[i];
		if (a.left < a.plotLeft - 0.5 || a.right > a.plotRight + 0.5) bad.push('marker label ' + a.label + ' cut at the plot edge');
		for (let j = i + 1; j < labels.length; j++) {
			if (overlap(a, labels[j])) bad.push('marker labels ' + a.label + ' and ' + labels[j].label + ' overlap');
		}
	}
	const groups = [
		[...document.querySelectorAll('.summary > section')],
		[...document.querySelectorAll('.charts > figure')],
		[...document.querySelectorAll('.two-col > section')],
		[...document.querySelectorAll('main > *')],
	];
	const name = (el) => el.id || el.getAttribute('aria-labelledby') || el.className || el.tagName;
	for (const g of groups) {
		const boxes = g.map((el) => [el, el.getBoundingClientRect()]);
		for (let i = 0; i < boxes.length; i++) {
			for (let j = i + 1; j < boxes.length; j++) {
				if (overlap(boxes[i][1], boxes[j][1])) bad.push(name(boxes[i][0]) + ' overlaps ' + name(boxes[j][0]));
			}
		}
	}
	if (document.documentElement.scrollWidth > window.innerWidth + 1) bad.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' px in a ' + window.innerWidth + ' px window');
	for (const el of document.querySelectorAll('.name')) {
		if (el.getClientRects().length > 1) bad.push('the name ' + el.textContent + ' breaks across lines');
	}
	for (const el of document.querySelectorAll('.summary > section, .chart')) {
		if (el.scrollWidth > el.clientWidth + 1) bad.push(name(el) + ' overflows its box');
	}
	return bad.join('; ');
})()`
