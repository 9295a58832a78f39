/**
 * Pure helpers: the service's JSON as a rep reads it. No Apex, no DOM.
 */

const VERDICTS = {
    auto_approved: { label: 'Auto-approved', theme: 'slds-badge slds-theme_success' },
    needs_approval: { label: 'Needs approval', theme: 'slds-badge slds-theme_warning' },
    blocked: { label: 'Blocked', theme: 'slds-badge slds-theme_error' }
};

const STATUSES = {
    better: 'Better than the band',
    within: 'Within the band',
    exception: 'Needs approval',
    blocked: 'Blocked',
    missing: 'Not stated'
};

const REQUEST_STATUSES = {
    waiting: 'Waiting for an earlier step',
    pending: 'Pending',
    approved: 'Approved',
    rejected: 'Rejected',
    countered: 'Countered',
    expired: 'Expired',
    withdrawn: 'Withdrawn'
};

const OPS = { '>=': 'at least', '<=': 'at most', '>': 'more than', '<': 'less than', '==': '' };

/** A group or rule key as words: `sales_director` -> `sales director`. */
export function words(key) {
    return String(key ?? '').replace(/_/g, ' ');
}

/** A number from the service (a decimal string) as people write it. */
export function number(value) {
    if (value === null || value === undefined || value === '') {
        return '';
    }
    const parsed = Number(value);
    if (Number.isNaN(parsed)) {
        return String(value);
    }
    return parsed.toLocaleString('en-US', { maximumFractionDigits: 2 });
}

/** A term's value with its unit: `22%`, `12 months`, `yes`. */
export function valueText(value, unit) {
    if (value === null || value === undefined || value === '') {
        return 'not stated';
    }
    if (typeof value === 'boolean') {
        return value ? 'yes' : 'no';
    }
    if (unit === null || unit === undefined || Number.isNaN(Number(value))) {
        return words(value);
    }
    if (unit === '%') {
        return `${number(value)}%`;
    }
    // "1 month", "1 day": a plain plural unit reads singular for one.
    const one = Number(value) === 1 && /^[a-z]+s$/.test(unit);
    return `${number(value)} ${one ? unit.slice(0, -1) : unit}`;
}

export function verdictView(verdict) {
    return VERDICTS[verdict] || { label: words(verdict), theme: 'slds-badge' };
}

const isNumber = (v) => v !== null && v !== undefined && v !== '' && !Number.isNaN(Number(v));

/**
 * Which way is worse for us: +1 when larger values are worse (the walk-away or the tiers lie
 * above the band), -1 when smaller ones are. The check answer says it through where the
 * walk-away and the tiers sit; a band with neither is drawn as larger-is-worse.
 */
function worseSide(band, tiers) {
    const low = Number(band.low);
    const high = Number(band.high);
    for (const point of [band.walk_away, ...tiers.map((t) => t.limit)]) {
        if (!isNumber(point)) {
            continue;
        }
        if (Number(point) > high) {
            return 1;
        }
        if (Number(point) < low) {
            return -1;
        }
    }
    return 1;
}

/** Where a point sits on the bar, in percent, over every point drawn plus room past the walk-away. */
function scale(points, side) {
    const numbers = points.filter(isNumber).map(Number);
    let min = Math.min(...numbers);
    let max = Math.max(...numbers);
    // Room beyond the walk-away, so the zone no one can approve shows too.
    const room = (max - min || Math.abs(max) || 1) * 0.12;
    if (side > 0) {
        max += room;
    } else {
        min -= room;
    }
    const span = max - min || 1;
    return (v) => Math.round(((Number(v) - min) / span) * 1000) / 10;
}

/**
 * The small bar for a number term: the band, each escalation tier in its own shade (the check
 * answer's `tiers`, after the rules that fired), beyond the walk-away in red, and markers for
 * the walk-away and the value. `description` says the same in words for screen readers, and
 * `tiersText` shows the ladder to everyone (colour is never the only cue).
 */
export function barOf(term) {
    const band = term.band || {};
    if (term.kind !== 'number' || !isNumber(band.low) || !isNumber(band.high)) {
        return null;
    }
    const unit = term.unit;
    const tiers = (term.tiers || []).filter((t) => isNumber(t.limit));
    const side = worseSide(band, tiers);
    const walkAway = isNumber(band.walk_away) ? band.walk_away : null;
    const at = scale(
        [band.low, band.high, walkAway, term.value, ...tiers.map((t) => t.limit)],
        side
    );
    const zone = (from, to, kind, title) => {
        const left = Math.min(at(from), at(to));
        const width = Math.abs(at(to) - at(from));
        return {
            key: `${kind}-${from}-${to}`,
            className: `bar-zone bar-${kind}`,
            style: `left: ${left}%; width: ${Math.max(width, 0.5)}%;`,
            title
        };
    };
    const zones = [
        zone(
            band.low,
            band.high,
            'band',
            `Band: ${valueText(band.low, unit)} to ${valueText(band.high, unit)}`
        )
    ];
    let previous = side > 0 ? band.high : band.low;
    const ladder = [];
    // A tier reaches up to its limit where larger is worse, down to it where smaller is.
    const reaches = side > 0 ? 'up to' : 'down to';
    tiers.forEach((tier, index) => {
        const step = index + 1;
        const reach = valueText(tier.limit, unit);
        const who = words(tier.approver);
        ladder.push(`tier ${step} ${reaches} ${reach}: ${who}`);
        if (Number(tier.limit) !== Number(previous)) {
            zones.push(
                zone(
                    previous,
                    tier.limit,
                    `tier${Math.min(step, 3)}`,
                    `Tier ${step}: ${reaches} ${reach}, ${who}`
                )
            );
            previous = tier.limit;
        }
    });
    if (walkAway !== null) {
        const edge = at(walkAway);
        zones.push({
            key: 'blocked',
            className: 'bar-zone bar-blocked',
            style:
                side > 0 ? `left: ${edge}%; width: ${100 - edge}%;` : `left: 0%; width: ${edge}%;`,
            title: 'Beyond the walk-away: no one can approve'
        });
    }
    const where =
        term.status === 'exception' && term.tier
            ? ` (tier ${term.tier})`
            : term.status === 'blocked'
              ? ' (beyond the walk-away)'
              : '';
    return {
        zones,
        walkAwayStyle: walkAway === null ? null : `left: ${at(walkAway)}%;`,
        valueStyle: isNumber(term.value) ? `left: ${at(term.value)}%;` : null,
        tiersText: ladder.length ? `Escalation: ${ladder.join('; ')}.` : '',
        description:
            `Band ${valueText(band.low, unit)} to ${valueText(band.high, unit)}` +
            (ladder.length ? `; ${ladder.join('; ')}` : '') +
            (walkAway === null ? '' : `; walk-away ${valueText(walkAway, unit)}`) +
            `; value ${valueText(term.value, unit)}${where}.`
    };
}

/** The band of a choice or flag term in words. */
function bandText(term) {
    const band = term.band || {};
    if (band.allowed) {
        return `Allowed: ${band.allowed.map(words).join(', ')}`;
    }
    if (band.preferred !== undefined) {
        return `Preferred: ${valueText(band.preferred, null)}`;
    }
    return '';
}

/** One row per term, for the Now and What-if tabs. */
export function termRows(result) {
    return (result?.terms || []).map((term) => {
        const bar = barOf(term);
        return {
            key: term.key,
            label: term.label || words(term.key),
            value: valueText(term.value, term.unit),
            status: STATUSES[term.status] || words(term.status),
            statusClass: `status status_${term.status}`,
            bar,
            hasBar: bar !== null,
            bandText: bar ? '' : bandText(term),
            approvers: (term.approvers || []).map(words).join(', then '),
            hasApprovers: (term.approvers || []).length > 0,
            rules: (term.rules || []).map(words).join(', '),
            hasRules: (term.rules || []).length > 0
        };
    });
}

function labelsOf(result) {
    const labels = {};
    const units = {};
    for (const term of result?.terms || []) {
        labels[term.key] = term.label || words(term.key);
        units[term.key] = term.unit;
    }
    return { labels, units };
}

/** "Step 1: sales director approves Discount off list price." */
export function stepLines(result) {
    const { labels } = labelsOf(result);
    return (result?.steps || []).map((step) => ({
        key: `${step.group}-${step.step}`,
        text: `Step ${step.step}: ${words(step.group)} approves ${step.terms
            .map((key) => labels[key] || words(key))
            .join(', ')}.`
    }));
}

/** A trade as a rep says it: "Ask for a Contract length of at least 36 months: ...". */
export function tradeLines(result) {
    const { labels, units } = labelsOf(result);
    return (result?.trades || []).map((trade, index) => {
        const asks = trade.asks
            .map((ask) => {
                const op = OPS[ask.op] ?? ask.op;
                const label = labels[ask.term] || words(ask.term);
                return `${label} of ${op ? op + ' ' : ''}${valueText(ask.value, units[ask.term])}`;
            })
            .join(' and ');
        const term = labels[trade.term] || words(trade.term);
        const edge = valueText(trade.band_edge_after, units[trade.term]);
        const tail = trade.resolves
            ? 'which brings it back within the band'
            : `which leaves ${valueText(trade.variance_after, units[trade.term])} to approve`;
        return {
            key: `${trade.term}-${trade.rule}-${index}`,
            text: `Ask for a ${asks}: the ${term} band widens to ${edge}, ${tail}.`
        };
    });
}

/** Terms that need a justification when submitting. */
export function exceptionTerms(result) {
    return (result?.terms || [])
        .filter((term) => term.status === 'exception')
        .map((term) => ({
            key: term.key,
            label: `Why ${term.label || words(term.key)} at ${valueText(term.value, term.unit)}?`
        }));
}

export function blockedTerms(result) {
    return (result?.terms || [])
        .filter((term) => term.status === 'blocked')
        .map((term) => ({
            key: term.key,
            text: `${term.label || words(term.key)} at ${valueText(term.value, term.unit)} is beyond the walk-away (${valueText(term.band?.walk_away, term.unit)}); no one can approve it.`
        }));
}

/** Who acted, as people know them: `key:7:fiona` -> `fiona`; the package acting for a rep -> a rep. */
export function actorText(actor) {
    if (!actor) {
        return '';
    }
    const [who, user] = String(actor).split(' for sf:');
    const name = who.startsWith('key:') ? who.split(':').slice(2).join(':') : who;
    return user ? `a rep in Salesforce (${user})` : name;
}

export function requestRows(requests, labels = {}) {
    return (requests || []).map((request) => {
        const counter = request.counter_terms || null;
        const canAccept =
            request.status === 'countered' && counter !== null && !request.counter_accepted_at;
        return {
            id: request.id,
            key: `request-${request.id}`,
            group: words(request.group),
            step: request.step,
            status: REQUEST_STATUSES[request.status] || words(request.status),
            decidedBy: actorText(request.decided_by),
            decidedAt: request.decided_at,
            reason: request.reason,
            hasDecision: Boolean(request.decided_at),
            counterText: counter
                ? Object.entries(counter)
                      .map(
                          ([key, value]) =>
                              `${labels[key] || words(key)}: ${valueText(value, null)}`
                      )
                      .join(', ')
                : '',
            hasCounter: counter !== null,
            canAccept,
            acceptedBy: request.counter_accepted_at
                ? `Accepted by ${actorText(request.counter_accepted_by)}`
                : '',
            acceptLabel: `Accept the counter of ${words(request.group)}`
        };
    });
}

/** What the Prepare tab calls the three figures of a prepared term (the API's names differ). */
export const PLAN_NAMES = { opening: 'opening', goal: 'target', bottom_line: 'walk-away' };

/** `discount_pct` -> its label; `discount_pct.bottom_line` -> "Discount off list price (walk-away)". */
function termField(key, labels) {
    const [term, part] = key.split('.');
    const name = labels[term] || words(term);
    return part ? `${name} (${PLAN_NAMES[part] || words(part)})` : name;
}

/**
 * A failed Apex call as a rep reads it. The Apex class puts the service's problem (title,
 * detail, field errors, whether a retry may help) as JSON in the message; anything else is
 * described, never shown raw.
 */
export function describeError(error, labels = {}) {
    const generic = {
        title: 'Something went wrong while talking to the governance service.',
        detail: 'Try again; if it keeps happening, tell your Salesforce admin.',
        fields: [],
        retry: true
    };
    const message = error?.body?.message;
    if (typeof message !== 'string') {
        return generic;
    }
    let parsed;
    try {
        parsed = JSON.parse(message);
    } catch {
        return generic;
    }
    if (!parsed || typeof parsed.title !== 'string') {
        return generic;
    }
    const fields = (parsed.errors || []).map((item, index) => {
        const path = String(item.field || '');
        const key = path.startsWith('terms.') ? path.slice('terms.'.length) : null;
        return {
            key: `${path}-${index}`,
            path,
            field: key ? termField(key, labels) : words(path.split('.').pop()),
            message: item.message
        };
    });
    return {
        title: parsed.title,
        detail: fields.length ? '' : parsed.detail || '',
        fields,
        retry: Boolean(parsed.retry)
    };
}

const STYLE_COACHING = {
    closer: 'You push to close: before conceding, ask for something back.',
    diplomat: 'You protect the relationship: name your bottom line before the call, and hold it.',
    strategist: 'You plan the trades: open further from your goal to leave room to trade.',
    game_changer: 'You reframe the deal: anchor on value before any term is discussed.'
};

/** One line of coaching from the rep's style and the term this deal conceded most. */
export function coachingLine(rep, outcome) {
    const parts = [];
    if (rep?.style && STYLE_COACHING[rep.style]) {
        parts.push(STYLE_COACHING[rep.style]);
    }
    const conceded = (outcome?.terms || [])
        .filter((term) => Number(term.conceded_share) > 0)
        .sort((a, b) => Number(b.conceded_share) - Number(a.conceded_share));
    if (conceded.length) {
        const most = conceded[0];
        const share = Math.round(Number(most.conceded_share) * 100);
        parts.push(
            `On this deal you gave most on ${words(most.key)}: ${share}% of the way to the walk-away.`
        );
    }
    return parts.join(' ');
}

function percent(value) {
    return `${Math.round(Number(value) * 100)}%`;
}

/**
 * The rep's most-conceded terms across their won deals, from the concessions report the
 * service gives the package for the rep viewing the page (their own figures only):
 * "Across your 3 won deals you gave most on Discount off list price (3 of 3 deals, 51% of the
 * way to the walk-away on average), then Contract length (2 of 3, 34%)."
 */
export function concessionLine(report, labels = {}) {
    const rows = report?.rows || [];
    const total = rows.find((row) => row.term === null);
    const conceded = rows
        .filter((row) => row.term !== null && row.conceded > 0)
        .sort(
            (a, b) =>
                b.conceded - a.conceded ||
                Number(b.mean_conceded_share ?? 0) - Number(a.mean_conceded_share ?? 0)
        );
    if (!total || !conceded.length) {
        return '';
    }
    const name = (row) => labels[row.term] || words(row.term);
    const [first, second] = conceded;
    const onAverage =
        first.mean_conceded_share === null
            ? ''
            : `, ${percent(first.mean_conceded_share)} of the way to the walk-away on average`;
    let line =
        `Across your ${total.deals} won deal${total.deals === 1 ? '' : 's'} you gave most on ` +
        `${name(first)} (${first.conceded} of ${first.deals} deals${onAverage})`;
    if (second) {
        const secondShare =
            second.mean_conceded_share === null ? '' : `, ${percent(second.mean_conceded_share)}`;
        line += `, then ${name(second)} (${second.conceded} of ${second.deals}${secondShare})`;
    }
    line += '.';
    if (total.gives_without_gets > 0) {
        line += ` ${total.gives_without_gets} concession${total.gives_without_gets === 1 ? '' : 's'} got nothing in return: ask for something back before you give.`;
    }
    return line;
}
