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
    return unit === '%' ? `${number(value)}%` : `${number(value)} ${unit}`;
}

export function verdictView(verdict) {
    return VERDICTS[verdict] || { label: words(verdict), theme: 'slds-badge' };
}

/** Where a value sits between the band, the walk-away and the value itself, in percent. */
function scale(band, value) {
    const points = [band.low, band.high, band.walk_away, value]
        .filter((v) => v !== null && v !== undefined && !Number.isNaN(Number(v)))
        .map(Number);
    const min = Math.min(...points);
    const max = Math.max(...points);
    const span = max - min || 1;
    return (v) => Math.round(((Number(v) - min) / span) * 1000) / 10;
}

/** The small bar for a number term: the band as a segment, walk-away and value as markers. */
export function barOf(term) {
    const band = term.band || {};
    if (term.kind !== 'number' || band.low === undefined || band.high === undefined) {
        return null;
    }
    const at = scale(band, term.value);
    const left = at(band.low);
    const width = Math.max(at(band.high) - left, 1);
    const bar = {
        bandStyle: `left: ${left}%; width: ${width}%;`,
        walkAwayStyle: band.walk_away === null ? null : `left: ${at(band.walk_away)}%;`,
        valueStyle:
            term.value === null || term.value === undefined ? null : `left: ${at(term.value)}%;`
    };
    const unit = term.unit;
    bar.description =
        `Band ${valueText(band.low, unit)} to ${valueText(band.high, unit)}` +
        (band.walk_away === null || band.walk_away === undefined
            ? ''
            : `, walk-away ${valueText(band.walk_away, unit)}`) +
        `; value ${valueText(term.value, unit)}.`;
    return bar;
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
            field: key ? labels[key] || words(key) : words(path.split('.').pop()),
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
