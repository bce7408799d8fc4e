using Ifcb.Data.Datasets;
using Ifcb.Platform;

namespace Ifcb.Data.Tests;

public class UploadBudgetTests
{
    private static readonly UploadLimits Small = new(MaxFileBytes: 10, MaxFiles: 3, MaxTotalBytes: 25)
    {
        MaxFileBytesSetting = "Ifcb:MaxUploadFileBytes", MaxFilesSetting = "Ifcb:MaxUploadFiles", MaxTotalBytesSetting = "Ifcb:MaxUploadBytes",
    };

    [Fact]
    public void Chunks_of_one_file_add_up_and_each_bound_names_its_setting()
    {
        var budget = new UploadBudget(Small, "dataset upload");
        Assert.True(budget.Add("a/1.png", 6));
        Assert.False(budget.Add("a/1.png", 4));
        var perFile = Assert.Throws<IfcbException>(() => budget.Add("a/1.png", 1));
        Assert.Equal(ErrorKind.InvalidArgument, perFile.Kind);
        Assert.Contains("a/1.png is larger than the 10 bytes per-file limit of this dataset upload (limit Ifcb:MaxUploadFileBytes)", perFile.Message);

        budget = new UploadBudget(Small, "dataset upload");
        budget.Add("a/1.png", 10);
        budget.Add("a/2.png", 10);
        var total = Assert.Throws<IfcbException>(() => budget.Add("a/3.png", 6));
        Assert.Contains("exceeds its 25 bytes limit (limit Ifcb:MaxUploadBytes)", total.Message);

        budget = new UploadBudget(Small, "dataset upload");
        foreach (var file in new[] { "a/1.png", "a/2.png", "b/1.png" })
            budget.Add(file, 1);
        var files = Assert.Throws<IfcbException>(() => budget.Add("b/2.png", 1));
        Assert.Contains("more than 3 files (limit Ifcb:MaxUploadFiles)", files.Message);
    }

    [Fact]
    public void A_file_sent_again_is_refused_whether_or_not_it_was_ended()
    {
        var budget = new UploadBudget(Small, "dataset upload");
        budget.Add("a/1.png", 1);
        budget.Add("a/2.png", 1);
        Assert.Contains("a/1.png appears twice in this dataset upload", Assert.Throws<IfcbException>(() => budget.Add("a/1.png", 1)).Message);

        budget = new UploadBudget(Small, "dataset upload", " (hint)");
        budget.Add("a/1.png", 1);
        budget.EndFile();
        Assert.EndsWith("(hint).", Assert.Throws<IfcbException>(() => budget.Add("a/1.png", 1)).Message);
    }
}
