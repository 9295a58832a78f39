/**
 * Where each playbook term lives on the Opportunity: the fields the sync's default mapping
 * (src/governance/salesforce/mapping.example.yaml) reads. A pytest keeps the two the same.
 * The What-if tab's Apply writes a term to its field through Lightning Data Service.
 */
export const TERM_FIELDS = {
    discount_pct: 'Discount__c',
    payment_terms_days: 'Payment_Terms_Days__c',
    contract_months: 'Contract_Months__c',
    liability_cap_multiple: 'Liability_Cap_Multiple__c',
    uncapped_liability: 'Uncapped_Liability__c',
    support_level: 'Support_Level__c'
};

/** Picklist values as the playbook names its options (the mapping's `values`), both ways. */
export const OPTION_OF_PICKLIST = {
    support_level: { Standard: 'standard', Premium: 'premium', Platinum: 'platinum' }
};

export const PICKLIST_OF_OPTION = Object.fromEntries(
    Object.entries(OPTION_OF_PICKLIST).map(([term, values]) => [
        term,
        Object.fromEntries(Object.entries(values).map(([label, option]) => [option, label]))
    ])
);

/** The Opportunity fields the component reads (`getRecord`), as `Opportunity.Field`. */
export const OPPORTUNITY_FIELDS = [
    'Opportunity.Name',
    'Opportunity.Amount',
    'Opportunity.CurrencyIsoCode',
    'Opportunity.IsClosed',
    ...Object.values(TERM_FIELDS).map((field) => `Opportunity.${field}`)
];
