// Lightning Data Service, for the preview: the opportunity as the fixtures describe it.
const RECORD = {
    apiName: 'Opportunity',
    id: '0065g00000Gov01AAB',
    fields: {
        Name: { value: 'Acme renewal' },
        Amount: { value: 240000 },
        CurrencyIsoCode: { value: 'EUR' },
        IsClosed: { value: false },
        Discount__c: { value: 22 },
        Contract_Months__c: { value: 12 },
        Payment_Terms_Days__c: { value: 30 }
    }
};

export class getRecord {
    constructor(dataCallback) {
        this.dataCallback = dataCallback;
    }
    connect() {}
    disconnect() {}
    update() {
        this.dataCallback({ data: RECORD, error: undefined });
    }
}

export function getFieldValue(record, field) {
    const name = String(field).split('.').pop();
    return record?.fields?.[name]?.value;
}

export function updateRecord() {
    return Promise.resolve({});
}
