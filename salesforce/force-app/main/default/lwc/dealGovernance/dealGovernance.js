import { LightningElement, api, wire } from 'lwc';
import { getRecord, getFieldValue, updateRecord } from 'lightning/uiRecordApi';
import { ShowToastEvent } from 'lightning/platformShowToastEvent';
import check from '@salesforce/apex/DealGovernanceController.check';
import currentGovernance from '@salesforce/apex/DealGovernanceController.currentGovernance';
import submit from '@salesforce/apex/DealGovernanceController.submit';
import acceptCounter from '@salesforce/apex/DealGovernanceController.acceptCounter';
import preparation from '@salesforce/apex/DealGovernanceController.preparation';
import savePreparation from '@salesforce/apex/DealGovernanceController.savePreparation';
import review from '@salesforce/apex/DealGovernanceController.review';
import saveReview from '@salesforce/apex/DealGovernanceController.saveReview';
import {
    OPPORTUNITY_FIELDS,
    OPTION_OF_PICKLIST,
    PICKLIST_OF_OPTION,
    TERM_FIELDS
} from './termFields';
import {
    blockedTerms,
    coachingLine,
    concessionLine,
    describeError,
    exceptionTerms,
    PLAN_NAMES,
    requestRows,
    stepLines,
    termRows,
    tradeLines,
    valueText,
    verdictView,
    words
} from './format';

/** How long the What-if tab waits after the last keystroke before it checks the terms. */
export const DEBOUNCE_MS = 400;

const OPTIONAL_FIELDS = ['Opportunity.CurrencyIsoCode'];
const PLAN = Object.keys(PLAN_NAMES);
const PREMORTEM_ITEMS = 3;
const NOT_STATED = { label: 'Not stated', value: '' };
const FLAG_OPTIONS = [NOT_STATED, { label: 'Yes', value: 'true' }, { label: 'No', value: 'false' }];
const DIMENSIONS = [
    { key: 'instrumental', label: 'Economic terms won' },
    { key: 'process', label: 'How fair and well run it felt' },
    { key: 'relationship', label: 'Trust and goodwill with the customer' },
    { key: 'self', label: 'How you feel about yourself' }
];

/** Whether a term of a what-if check differs from the same term now: value, status or band. */
function changed(before, after) {
    if (!before || !after) {
        return true;
    }
    const band = (term) => JSON.stringify([term.band, term.tiers]);
    return (
        String(before.value ?? '') !== String(after.value ?? '') ||
        before.status !== after.status ||
        before.tier !== after.tier ||
        band(before) !== band(after)
    );
}

export default class DealGovernance extends LightningElement {
    @api recordId;

    record;
    current;
    loading = true;
    error;
    whatIfValues = {};
    whatIfResult;
    whatIfChecking = false;
    whatIfError;
    justifications = {};
    submitting = false;
    submitError;
    prepared;
    preparedLoaded = false;
    prepareError;
    prepareDraft = { goal: '', interests: '', terms: {}, premortem: [] };
    prepareFieldErrors = {};
    savingPreparation = false;
    reviewed;
    reviewLoaded = false;
    reviewError;
    reviewDraft = {};
    savingReview = false;

    _debounce;
    _requestSeq = 0;

    @wire(getRecord, {
        recordId: '$recordId',
        fields: OPPORTUNITY_FIELDS,
        optionalFields: OPTIONAL_FIELDS
    })
    wiredRecord({ data, error }) {
        if (data) {
            const first = !this.record;
            this.record = data;
            if (first) {
                this.load();
            }
        } else if (error) {
            this.loading = false;
            this.error = {
                title: 'This opportunity could not be read.',
                detail: 'Check that you can see it, then reload the page.',
                fields: [],
                retry: false
            };
        }
    }

    disconnectedCallback() {
        clearTimeout(this._debounce);
    }

    // --- loading ------------------------------------------------------------------------------

    async load() {
        this.loading = true;
        this.error = undefined;
        try {
            this.current = JSON.parse(await currentGovernance({ opportunityId: this.recordId }));
            if (!this.current.deal) {
                // Not synced yet: check the terms as the opportunity states them, storing nothing.
                const result = await check({ checkRequest: JSON.stringify(this.checkRequest()) });
                this.current = { ...this.current, check: { result: JSON.parse(result) } };
            }
            this.whatIfValues = this.recordTerms();
            this.whatIfResult = this.result;
        } catch (e) {
            this.error = describeError(e, this.labels);
        } finally {
            this.loading = false;
        }
    }

    handleRetry() {
        this.load();
    }

    // --- what the service says now --------------------------------------------------------------

    get result() {
        return this.current?.check?.result;
    }

    get hasResult() {
        return Boolean(this.result);
    }

    get labels() {
        const labels = {};
        for (const term of this.result?.terms || []) {
            labels[term.key] = term.label || words(term.key);
        }
        return labels;
    }

    get verdict() {
        return verdictView(this.result?.verdict);
    }

    get varianceText() {
        const score = Number(this.result?.variance_score ?? 0);
        return score.toLocaleString('en-US', { maximumFractionDigits: 3 });
    }

    get rows() {
        return termRows(this.result);
    }

    get steps() {
        return stepLines(this.result);
    }

    get hasSteps() {
        return this.steps.length > 0;
    }

    get trades() {
        return tradeLines(this.result);
    }

    get hasTrades() {
        return this.trades.length > 0;
    }

    get notSynced() {
        return this.current && !this.current.deal;
    }

    // --- what-if --------------------------------------------------------------------------------

    /** The opportunity's terms as the playbook names them (`recordTerms`), from LDS. */
    recordTerms() {
        const terms = {};
        if (!this.record) {
            return terms;
        }
        for (const [term, field] of Object.entries(TERM_FIELDS)) {
            let value = getFieldValue(this.record, `Opportunity.${field}`);
            if (value === undefined || value === null || value === '') {
                continue;
            }
            if (OPTION_OF_PICKLIST[term]) {
                value = OPTION_OF_PICKLIST[term][value] ?? value;
            }
            terms[term] = value;
        }
        return terms;
    }

    checkRequest(terms = this.recordTerms()) {
        const attributes = {};
        const known = this.current?.deal?.attributes || {};
        for (const [key, value] of Object.entries(known)) {
            if (value !== null && value !== undefined) {
                attributes[key] = value;
            }
        }
        if (!this.current?.deal && this.record) {
            const amount = getFieldValue(this.record, 'Opportunity.Amount');
            const currency = getFieldValue(this.record, 'Opportunity.CurrencyIsoCode');
            if (amount !== null && amount !== undefined) {
                attributes.amount = String(amount);
            }
            if (currency) {
                attributes.currency = currency;
            }
        }
        const request = { attributes, terms: { ...(this.current?.deal?.terms || {}), ...terms } };
        if (this.result?.playbook?.key) {
            request.playbook = this.result.playbook.key;
        }
        return request;
    }

    /**
     * The terms with the rep's values; a number term that changed (its value, or where it
     * lands, or a band a rule moved) shows its bar, as on the Now tab.
     */
    get whatIfRows() {
        const now = Object.fromEntries((this.result?.terms || []).map((t) => [t.key, t]));
        const byKey = Object.fromEntries((this.whatIfResult?.terms || []).map((t) => [t.key, t]));
        return termRows(this.whatIfResult).map((row) => ({
            ...row,
            showBar: row.hasBar && changed(now[row.key], byKey[row.key])
        }));
    }

    get whatIfVerdict() {
        return verdictView(this.whatIfResult?.verdict);
    }

    get whatIfVariance() {
        const score = Number(this.whatIfResult?.variance_score ?? 0);
        return score.toLocaleString('en-US', { maximumFractionDigits: 3 });
    }

    get whatIfTrades() {
        return tradeLines(this.whatIfResult);
    }

    get hasWhatIfTrades() {
        return this.whatIfTrades.length > 0;
    }

    /** One input per term of the playbook, of the term's kind. */
    get whatIfInputs() {
        return (this.result?.terms || []).map((term) => {
            const value = this.whatIfValues[term.key];
            const options = OPTION_OF_PICKLIST[term.key]
                ? Object.values(OPTION_OF_PICKLIST[term.key]).map((option) => ({
                      label: words(option),
                      value: option
                  }))
                : null;
            return {
                key: term.key,
                label: term.unit ? `${term.label} (${term.unit})` : term.label,
                value: value === undefined || value === null ? '' : String(value),
                checked: value === true,
                isNumber: term.kind === 'number',
                isChoice: term.kind === 'choice' && options !== null,
                isText: term.kind === 'choice' && options === null,
                isFlag: term.kind === 'flag',
                options
            };
        });
    }

    handleWhatIfChange(event) {
        const key = event.target.dataset.term;
        const kind = event.target.dataset.kind;
        let value = kind === 'flag' ? event.target.checked : event.detail.value;
        if (value === '' || value === undefined) {
            value = null;
        }
        this.whatIfValues = { ...this.whatIfValues, [key]: value };
        clearTimeout(this._debounce);
        // eslint-disable-next-line @lwc/lwc/no-async-operation
        this._debounce = setTimeout(() => this.runWhatIf(), DEBOUNCE_MS);
    }

    async runWhatIf() {
        const seq = ++this._requestSeq;
        this.whatIfChecking = true;
        try {
            const answer = await check({
                checkRequest: JSON.stringify(this.checkRequest(this.whatIfValues))
            });
            if (seq === this._requestSeq) {
                this.whatIfResult = JSON.parse(answer);
                this.whatIfError = undefined;
            }
        } catch (e) {
            if (seq === this._requestSeq) {
                this.whatIfError = describeError(e, this.labels);
            }
        } finally {
            if (seq === this._requestSeq) {
                this.whatIfChecking = false;
            }
        }
    }

    handleWhatIfRetry() {
        this.runWhatIf();
    }

    /** Apply: write the values to the opportunity's fields; the sync takes it from there. */
    async handleApply() {
        const fields = { Id: this.recordId };
        for (const [term, field] of Object.entries(TERM_FIELDS)) {
            if (!(term in this.whatIfValues)) {
                continue;
            }
            let value = this.whatIfValues[term];
            if (value !== null && PICKLIST_OF_OPTION[term]) {
                value = PICKLIST_OF_OPTION[term][value] ?? value;
            } else if (
                value !== null &&
                typeof value !== 'boolean' &&
                !Number.isNaN(Number(value))
            ) {
                value = Number(value);
            }
            fields[field] = value;
        }
        try {
            await updateRecord({ fields });
            this.dispatchEvent(
                new ShowToastEvent({
                    title: 'Terms applied',
                    message:
                        'The opportunity has the new terms; governance follows at the next sync.',
                    variant: 'success'
                })
            );
        } catch (e) {
            this.dispatchEvent(
                new ShowToastEvent({
                    title: 'The terms could not be saved',
                    message: e?.body?.message || 'Check the values and try again.',
                    variant: 'error'
                })
            );
        }
    }

    // --- submit and follow ----------------------------------------------------------------------

    get canSubmit() {
        return (
            this.result?.verdict === 'needs_approval' || this.result?.verdict === 'auto_approved'
        );
    }

    get isBlocked() {
        return this.result?.verdict === 'blocked';
    }

    get blocked() {
        return blockedTerms(this.result);
    }

    get justificationFields() {
        return exceptionTerms(this.result).map((field) => ({
            ...field,
            value: this.justifications[field.key] || ''
        }));
    }

    get submitDisabled() {
        return this.submitting || !this.canSubmit;
    }

    get requests() {
        return requestRows(this.current?.requests, this.labels);
    }

    get hasRequests() {
        return this.requests.length > 0;
    }

    handleJustification(event) {
        this.justifications = {
            ...this.justifications,
            [event.target.dataset.term]: event.detail.value
        };
    }

    async handleSubmit() {
        this.submitting = true;
        this.submitError = undefined;
        const request = this.checkRequest();
        const deal = {
            name: getFieldValue(this.record, 'Opportunity.Name') || undefined,
            attributes: request.attributes,
            terms: request.terms
        };
        if (this.current?.deal?.playbook) {
            // A deal the sync pinned to a playbook stays pinned.
            deal.playbook = this.current.deal.playbook;
        }
        const justifications = {};
        for (const [key, text] of Object.entries(this.justifications)) {
            if (text && text.trim()) {
                justifications[key] = text.trim();
            }
        }
        try {
            const submission = JSON.parse(
                await submit({
                    opportunityId: this.recordId,
                    deal: JSON.stringify(deal),
                    justifications: JSON.stringify(justifications)
                })
            );
            this.current = {
                ...this.current,
                deal: { ...(this.current?.deal || {}), status: submission.deal_status },
                check: submission.check,
                requests: submission.requests
            };
            this.dispatchEvent(
                new ShowToastEvent({
                    title: 'Submitted for approval',
                    message: `Status: ${words(submission.deal_status)}`,
                    variant: 'success'
                })
            );
        } catch (e) {
            this.submitError = describeError(e, this.labels);
        } finally {
            this.submitting = false;
        }
    }

    async handleAcceptCounter(event) {
        const requestId = Number(event.target.dataset.request);
        this.submitError = undefined;
        try {
            const submission = JSON.parse(
                await acceptCounter({ opportunityId: this.recordId, requestId })
            );
            await this.load();
            this.dispatchEvent(
                new ShowToastEvent({
                    title: 'Counter accepted',
                    message: `Status: ${words(submission.deal_status)}`,
                    variant: 'success'
                })
            );
        } catch (e) {
            this.submitError = describeError(e, this.labels);
        }
    }

    // --- prepare and review ---------------------------------------------------------------------

    async handlePrepareActive() {
        if (this.preparedLoaded) {
            return;
        }
        this.prepareError = undefined;
        try {
            const answer = await preparation({ opportunityId: this.recordId });
            this.prepared = answer ? JSON.parse(answer) : null;
            this.prepareDraft = this.draftOf(this.prepared);
            this.preparedLoaded = true;
        } catch (e) {
            this.prepareError = describeError(e, this.labels);
        }
    }

    /** The form's values from a stored preparation (or blank ones), as text. */
    draftOf(prepared) {
        const text = (v) => (v === null || v === undefined ? '' : String(v));
        const terms = {};
        for (const [key, plan] of Object.entries(prepared?.terms || {})) {
            terms[key] = Object.fromEntries(PLAN.map((name) => [name, text(plan[name])]));
        }
        const premortem = [];
        for (let i = 0; i < PREMORTEM_ITEMS; i++) {
            const item = prepared?.premortem?.[i] || {};
            premortem.push({ risk: text(item.risk), mitigation: text(item.mitigation) });
        }
        return {
            goal: text(prepared?.goal),
            interests: (prepared?.customer_interests || []).join('\n'),
            terms,
            premortem
        };
    }

    get hasPreparation() {
        return Boolean(this.prepared);
    }

    errorAt(path) {
        return this.prepareFieldErrors[path] || '';
    }

    /** The options a choice term's select offers, best for us first; null when unknown. */
    optionsOf(term) {
        if (term.kind === 'flag') {
            return FLAG_OPTIONS;
        }
        if (term.kind !== 'choice') {
            return null;
        }
        // The picklist's values where the package maps one; else what the check answer offers:
        // the band's options, then each tier's (a plan names options someone can agree to).
        const known = OPTION_OF_PICKLIST[term.key]
            ? Object.values(OPTION_OF_PICKLIST[term.key])
            : [
                  ...new Set([
                      ...(term.band?.allowed || []),
                      ...(term.tiers || []).flatMap((tier) => tier.options || [])
                  ])
              ];
        if (!known.length) {
            return null;
        }
        return [NOT_STATED, ...known.map((option) => ({ label: words(option), value: option }))];
    }

    /**
     * One row per term of the playbook: opening, target and walk-away, editable. A number is
     * typed; a choice is picked from its options (typed when neither the package nor the check
     * answer names any); a flag is yes, no or not stated.
     */
    get preparedTerms() {
        return (this.result?.terms || []).map((term) => {
            const plan = this.prepareDraft.terms[term.key] || {};
            const label = this.labels[term.key] || words(term.key);
            const unit = term.kind === 'number' && term.unit ? ` (${term.unit})` : '';
            const options = this.optionsOf(term);
            return {
                key: term.key,
                label,
                inputs: PLAN.map((name) => {
                    const path = `terms.${term.key}.${name}`;
                    return {
                        key: path,
                        name,
                        label: `${label}: ${PLAN_NAMES[name]}${unit}`,
                        value: plan[name] || '',
                        isNumber: term.kind === 'number',
                        isSelect: options !== null,
                        options,
                        error: this.errorAt(path),
                        errorId: `error-${term.key}-${name}`
                    };
                })
            };
        });
    }

    get premortem() {
        return this.prepareDraft.premortem.map((item, index) => ({
            key: `risk-${index}`,
            index,
            riskLabel: `Risk ${index + 1}`,
            mitigationLabel: `How you would prevent risk ${index + 1}`,
            risk: item.risk,
            mitigation: item.mitigation,
            riskError: this.errorAt(`premortem[${index}].risk`),
            mitigationError: this.errorAt(`premortem[${index}].mitigation`)
        }));
    }

    get prepareGoal() {
        return this.prepareDraft.goal;
    }

    get prepareGoalError() {
        return this.errorAt('goal');
    }

    get interests() {
        return this.prepareDraft.interests;
    }

    get interestsError() {
        // Interests are typed one per line; an error on one line shows on the whole box.
        const paths = Object.keys(this.prepareFieldErrors).filter((path) =>
            path.startsWith('customer_interests')
        );
        return paths.map((path) => this.prepareFieldErrors[path]).join(' ');
    }

    get premortemError() {
        return this.errorAt('premortem');
    }

    handlePrepareChange(event) {
        const { field, term, name, index } = event.target.dataset;
        const value = event.detail.value ?? event.target.value ?? '';
        const draft = { ...this.prepareDraft };
        if (term) {
            const plan = { ...(draft.terms[term] || {}), [name]: value };
            draft.terms = { ...draft.terms, [term]: plan };
        } else if (index !== undefined) {
            draft.premortem = draft.premortem.map((item, i) => {
                return i === Number(index) ? { ...item, [name]: value } : item;
            });
        } else {
            draft[field] = value;
        }
        this.prepareDraft = draft;
    }

    /** The `PreparationWrite` body: what the rep typed, plus stored terms the form does not show. */
    preparationBody() {
        const draft = this.prepareDraft;
        const blank = (v) => v === undefined || v === null || String(v).trim() === '';
        const terms = {};
        const shown = new Set(this.preparedTerms.map((row) => row.key));
        for (const [key, plan] of Object.entries(this.prepared?.terms || {})) {
            if (!shown.has(key)) {
                terms[key] = plan; // a term the playbook no longer has: kept as it is
            }
        }
        const kinds = Object.fromEntries((this.result?.terms || []).map((t) => [t.key, t.kind]));
        // A flag's select says 'true' or 'false'; the API takes a flag as a boolean.
        const valueOf = (key, v) => {
            if (blank(v)) {
                return null;
            }
            const typed = String(v).trim();
            return kinds[key] === 'flag' ? typed === 'true' : typed;
        };
        for (const [key, plan] of Object.entries(draft.terms)) {
            if (PLAN.every((name) => blank(plan[name]))) {
                continue; // a term left empty is not prepared
            }
            terms[key] = Object.fromEntries(PLAN.map((name) => [name, valueOf(key, plan[name])]));
        }
        return {
            goal: blank(draft.goal) ? null : draft.goal.trim(),
            terms,
            customer_interests: draft.interests
                .split('\n')
                .map((line) => line.trim())
                .filter((line) => line),
            premortem: draft.premortem.map((item) => ({
                risk: item.risk.trim(),
                mitigation: item.mitigation.trim()
            }))
        };
    }

    async handleSavePreparation() {
        this.savingPreparation = true;
        this.prepareError = undefined;
        this.prepareFieldErrors = {};
        try {
            const saved = JSON.parse(
                await savePreparation({
                    opportunityId: this.recordId,
                    preparation: JSON.stringify(this.preparationBody()),
                    version: this.prepared ? this.prepared.version : null
                })
            );
            this.prepared = saved;
            this.prepareDraft = this.draftOf(saved);
            this.dispatchEvent(
                new ShowToastEvent({
                    title: 'Preparation saved',
                    message: `Version ${saved.version}`,
                    variant: 'success'
                })
            );
        } catch (e) {
            const error = describeError(e, this.labels);
            this.prepareError = error;
            this.prepareFieldErrors = Object.fromEntries(
                error.fields.filter((f) => f.path).map((f) => [f.path, f.message])
            );
        } finally {
            this.savingPreparation = false;
        }
    }

    async handleReviewActive() {
        if (this.reviewLoaded) {
            return;
        }
        this.reviewError = undefined;
        try {
            const rep = this.current?.deal?.attributes?.owner_rep || '';
            this.reviewed = JSON.parse(await review({ opportunityId: this.recordId, rep }));
            const filed = this.reviewed.review || {};
            this.reviewDraft = Object.fromEntries(
                DIMENSIONS.map((d) => [d.key, filed[d.key] ?? 4]).concat([
                    ['note', filed.note || '']
                ])
            );
            this.reviewLoaded = true;
        } catch (e) {
            this.reviewError = describeError(e, this.labels);
        }
    }

    get isClosed() {
        return Boolean(this.reviewed?.outcome);
    }

    get outcomeText() {
        const outcome = this.reviewed?.outcome;
        if (!outcome) {
            return '';
        }
        const currency = this.current?.deal?.attributes?.currency;
        const cost =
            outcome.cost === null || outcome.cost === undefined
                ? ''
                : `; the concessions cost ${valueText(outcome.cost, currency || null)}`;
        return `${outcome.won ? 'Won' : 'Lost'} on ${outcome.close_date}${cost}.`;
    }

    get coaching() {
        return coachingLine(this.reviewed?.rep, this.reviewed?.outcome);
    }

    /** The rep's own pattern across their won deals (the concessions report, theirs only). */
    get acrossDeals() {
        return concessionLine(this.reviewed?.concessions, this.labels);
    }

    get dimensions() {
        return DIMENSIONS.map((d) => ({ ...d, value: this.reviewDraft[d.key] }));
    }

    get reviewNote() {
        return this.reviewDraft.note || '';
    }

    handleReviewChange(event) {
        const key = event.target.dataset.dimension;
        const value = key === 'note' ? event.detail.value : Number(event.detail.value);
        this.reviewDraft = { ...this.reviewDraft, [key]: value };
    }

    async handleSaveReview() {
        this.savingReview = true;
        this.reviewError = undefined;
        try {
            const body = { ...this.reviewDraft, note: this.reviewDraft.note || null };
            const saved = JSON.parse(
                await saveReview({ opportunityId: this.recordId, review: JSON.stringify(body) })
            );
            this.reviewed = { ...this.reviewed, review: saved };
            this.dispatchEvent(
                new ShowToastEvent({ title: 'Review saved', message: '', variant: 'success' })
            );
        } catch (e) {
            this.reviewError = describeError(e, this.labels);
        } finally {
            this.savingReview = false;
        }
    }
}
